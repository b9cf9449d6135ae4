package testmain

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const childEnv = "TESTMAIN_CHILD"

// TestMain lets the test binary act as a binary built around Run: a child started with
// TESTMAIN_CHILD set runs the tests below through Run instead of the real ones.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(Run([]testing.InternalTest{
			{Name: "TestPasses", F: func(t *testing.T) { t.Log("passing") }},
			{Name: "TestFails", F: func(t *testing.T) {
				t.Run("sub", func(t *testing.T) { t.Error("failing on purpose") })
			}},
		}))
	}
	os.Exit(m.Run())
}

func child(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("run child: %v", err)
		return "", -1
	}
}

func TestRunSelectsAndReportsLikeGoTest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		run      string
		wantCode int
		want     []string
	}{
		{"^TestPasses$", 0, []string{"--- PASS: TestPasses", "passing"}},
		{"^TestFails$", 1, []string{"--- FAIL: TestFails/sub", "failing on purpose"}},
		{"^TestNothing$", 0, []string{"no tests to run"}},
	} {
		t.Run(tt.run, func(t *testing.T) {
			t.Parallel()
			out, code := child(t, "-test.v", "-test.run", tt.run)
			if code != tt.wantCode {
				t.Errorf("exit code %d; want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestRunRefusesABadPattern(t *testing.T) {
	t.Parallel()
	if out, code := child(t, "-test.run", "("); code == 0 {
		t.Errorf("exit code 0 for -test.run '('; want non-zero; output:\n%s", out)
	}
}
