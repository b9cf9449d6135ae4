package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// TestStartPassesEnv: Env reaches the process on top of the provider's environment, and the
// log header records it.
func TestStartPassesEnv(t *testing.T) { // not parallel: t.Setenv
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	sh, _ = filepath.EvalSymlinks(sh)
	dir := t.TempDir()
	t.Setenv("GATECHECK_PROC_TEST_INHERITED", "yes")
	p := Process{Name: "env", Argv: []string{sh, "-c", `echo "gogc=$GOGC inherited=$GATECHECK_PROC_TEST_INHERITED"`}, Env: []string{"GOGC=400"},
		PIDFile: filepath.Join(dir, "run", "e.pid"), LogFile: filepath.Join(dir, "logs", "e.log")}
	if _, err := Start(p); err != nil {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, _ := os.ReadFile(p.LogFile)
		if strings.Contains(string(log), "gogc=400 inherited=yes") {
			if !strings.Contains(string(log), "started env at") || !strings.Contains(string(log), ": GOGC=400 "+sh) {
				t.Errorf("log header %q does not record the environment", log)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log = %q; want the process to see GOGC=400 and the inherited variable", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartDoesNotLeakInheritedDescriptors: a descriptor gatecheck inherited without
// close-on-exec (a `flock LOCK gatecheck ...` lock, a CI runner's pipe) is not passed on to the
// detached components, which would hold it until `cluster down`.
func TestStartDoesNotLeakInheritedDescriptors(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	sh, _ = filepath.EvalSymlinks(sh)
	dir := t.TempDir()
	// Opened the way a parent process hands a descriptor down: without O_CLOEXEC.
	fd, err := syscall.Open(filepath.Join(dir, "lock"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	p := Process{Name: "fds", Argv: []string{sh, "-c", fmt.Sprintf(`s=closed; [ -e /proc/$$/fd/%d ] && s=inherited; echo "result:$s"`, fd)},
		PIDFile: filepath.Join(dir, "run", "f.pid"), LogFile: filepath.Join(dir, "logs", "f.log")}
	if _, err := Start(p); err != nil {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, _ := os.ReadFile(p.LogFile)
		// The log's header line holds the command itself, so the result is matched as printed.
		if strings.Contains(string(log), "result:closed") {
			return
		}
		if strings.Contains(string(log), "result:inherited") || time.Now().After(deadline) {
			t.Fatalf("log = %q; want the started process not to have fd %d", log, fd)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
