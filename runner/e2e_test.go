//go:build e2e

package runner_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/cluster"
)

// TestInterruptedRunLeavesNothing is issue 9's Ctrl-C check on the host cluster: a run
// interrupted while the upstream suite is running must exit 2, still write a report that says it
// was interrupted, and leave no cluster process, namespace, mount, netns, bridge or iptables
// chain. It tears down any running host cluster first (one host cluster per machine).
func TestInterruptedRunLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the host cluster needs root")
	}
	root, err := cluster.ModuleRoot("")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gatecheck")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "gatecheck")).CombinedOutput(); err != nil {
		t.Fatalf("build gatecheck: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "cluster", "down", "--cluster", "host").CombinedOutput(); err != nil {
		t.Fatalf("initial cluster down: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	outDir := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "run", "--cluster", "host", "--suites", "conformance", "--out", outDir)
	cmd.Dir = root
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	interrupted := time.Time{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		// Interrupt once the upstream suite has started: the cluster, the CRDs, the
		// implementation and the suite's namespaces all exist by then.
		if interrupted.IsZero() && strings.Contains(line, "conformance:") || interrupted.IsZero() && strings.Contains(line, "running; full log") {
			time.Sleep(10 * time.Second)
			t.Log(">>> sending SIGINT")
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			interrupted = time.Now()
		}
	}
	err = cmd.Wait()
	if interrupted.IsZero() {
		t.Fatalf("the run ended (%v) before the conformance suite started; nothing was interrupted", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("interrupted run: exit %v; want exit code 2 (the run could not complete)", err)
	}
	t.Logf("run exited %d, %s after SIGINT", ee.ExitCode(), time.Since(interrupted).Round(time.Second))

	data, err := os.ReadFile(filepath.Join(outDir, "report.json"))
	if err != nil {
		t.Fatalf("interrupted run wrote no report: %v", err)
	}
	var rep struct {
		Run struct {
			Incomplete []string `json:"incomplete"`
		} `json:"run"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if !strings.Contains(strings.Join(rep.Run.Incomplete, ";"), "interrupt") {
		t.Errorf("report run.incomplete = %q; want it to say the run was interrupted", rep.Run.Incomplete)
	}
	for _, l := range cluster.HostLeftovers() {
		t.Errorf("left after an interrupted run: %s", l)
	}
}

// TestUnacceptedGatewayClassFailsFast: a profile whose GatewayClass no controller accepts fails
// after the profile's acceptTimeout with exit 2, naming the class and the timeout, and still
// tears the cluster down.
func TestUnacceptedGatewayClassFailsFast(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the host cluster needs root")
	}
	root, err := cluster.ModuleRoot("")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gatecheck")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "gatecheck")).CombinedOutput(); err != nil {
		t.Fatalf("build gatecheck: %v\n%s", err, out)
	}
	start := time.Now()
	cmd := exec.Command(bin, "run", "--cluster", "host", "--suites", "conformance",
		"--impl", filepath.Join(root, "runner", "testdata", "unaccepted", "profile.yaml"), "--out", t.TempDir())
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("run with an unaccepted GatewayClass: %v; want exit code 2", err)
	}
	for _, want := range []string{"GatewayClass gatecheck-unaccepted to be Accepted by example.com/nobody-runs-this", "timed out after 15s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q", want)
		}
	}
	t.Logf("failed after %s", time.Since(start).Round(time.Second))
	for _, l := range cluster.HostLeftovers() {
		t.Errorf("left after the failed run: %s", l)
	}
}
