package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reports/model"
)

// asGatecheck makes this test binary act as the gatecheck command when it is started with it
// set, so exit codes are checked on a real process, the way CI sees them.
const asGatecheck = "GATECHECK_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asGatecheck) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func gatecheckProcess(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), asGatecheck+"=1", "GATECHECK_CACHE="+filepath.Join(dir, "cache"))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("run gatecheck %v: %v", args, err)
		return "", -1
	}
}

// savedReport writes a report.json with one suite whose single spec ended with outcome, and
// incomplete as the run's reasons for not finishing.
func savedReport(t *testing.T, dir, name string, outcome model.Outcome, incomplete ...string) string {
	t.Helper()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := model.Report{
		SchemaVersion: model.SchemaVersion,
		Run:           model.Run{Implementation: "example", Start: now, End: now.Add(time.Minute), Incomplete: incomplete},
		Suites: []model.Suite{{
			Name: "canary", Succeeded: outcome == model.OutcomePassed,
			Specs: []model.Spec{{Name: "Weighted split 90/10", Hierarchy: []string{"Weighted split", "90/10"}, Labels: []string{"canary"}, Outcome: outcome}},
		}},
	}
	if outcome == model.OutcomeFailed {
		r.Suites[0].Specs[0].Failure = &model.Failure{Message: "v2 got 13.7% where 10% is declared"}
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExitCodesEndToEnd: the process exits 0 when every gated verdict passed, 1 when a verdict
// failed, 2 when something could not run or the input is bad, as the README promises CI.
func TestExitCodesEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badProfile := filepath.Join(dir, "bad-profile.yaml")
	if err := os.WriteFile(badProfile, []byte("apiVersion: gatecheck.dev/v1alpha1\nkind: ImplementationProfile\nname: Bad_Name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want int
		say  string
	}{
		{"passed", []string{"report", "--in", savedReport(t, dir, "pass.json", model.OutcomePassed), "--out", filepath.Join(dir, "out-pass")}, 0, "exit 0"},
		{"verdict failed", []string{"report", "--in", savedReport(t, dir, "fail.json", model.OutcomeFailed), "--out", filepath.Join(dir, "out-fail")}, 1, "exit 1"},
		{"run incomplete", []string{"report", "--in", savedReport(t, dir, "incomplete.json", model.OutcomePassed, "conformance suite interrupted"), "--out", filepath.Join(dir, "out-inc")}, 2, "exit 2"},
		{"unreadable results", []string{"report", "--in", filepath.Join(dir, "missing.json"), "--out", filepath.Join(dir, "out-missing")}, 2, "missing.json"},
		{"bad profile", []string{"run", "--cluster", "existing", "--impl", badProfile}, 2, "name"},
		{"bad flag", []string{"run", "--suites", "canary,bogus"}, 2, `unknown suite "bogus"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, code := gatecheckProcess(t, dir, tt.args...)
			if code != tt.want {
				t.Errorf("gatecheck %s: exit %d; want %d; output:\n%s", strings.Join(tt.args, " "), code, tt.want, out)
			}
			if !strings.Contains(out, tt.say) {
				t.Errorf("gatecheck %s: output lacks %q:\n%s", strings.Join(tt.args, " "), tt.say, out)
			}
		})
	}
}
