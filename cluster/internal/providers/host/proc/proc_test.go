package proc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	dir := t.TempDir()
	p := Process{Name: "sleeper", Argv: []string{sleep, "60"}, PIDFile: filepath.Join(dir, "run", "s.pid"), LogFile: filepath.Join(dir, "logs", "s.log")}
	pid, err := Start(p)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got, ok := Running(p); !ok || got != pid {
		t.Fatalf("Running = %d, %v; want %d, true", got, ok, pid)
	}
	if got := FindByExe(sleep); len(got) == 0 {
		t.Errorf("FindByExe(%s) found nothing; want pid %d among them", sleep, pid)
	}
	if err := Stop(context.Background(), p, 2*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, ok := Running(p); ok {
		t.Errorf("Running after Stop = true; want false")
	}
	if _, err := os.Stat(p.PIDFile); !os.IsNotExist(err) {
		t.Errorf("pid file after Stop: %v; want it removed", err)
	}
	// Stop again: nothing recorded, nothing to do, no error.
	if err := Stop(context.Background(), p, time.Second); err != nil {
		t.Errorf("second Stop: got %v; want nil", err)
	}
	log, _ := os.ReadFile(p.LogFile)
	if !strings.Contains(string(log), "=== gatecheck started sleeper") {
		t.Errorf("log = %q; want a start header", log)
	}
}

func TestAliveRejectsOtherExecutable(t *testing.T) {
	t.Parallel()
	if Alive(os.Getpid(), "/not/our/binary") {
		t.Errorf("Alive(self, /not/our/binary) = true; want false")
	}
	self, _ := os.Executable()
	if !Alive(os.Getpid(), self) {
		t.Errorf("Alive(self, %s) = false; want true", self)
	}
}

func TestStartRejectsRelativeArgv0(t *testing.T) {
	t.Parallel()
	_, err := Start(Process{Name: "x", Argv: []string{"sleep"}})
	if err == nil || !strings.Contains(err.Error(), "Argv[0]") {
		t.Errorf("got %v; want an error naming Argv[0]", err)
	}
}
