// Package proc starts the host cluster's components as detached processes (own session, so
// they outlive the `gatecheck cluster up` that started them) with a log file and a PID file,
// and stops exactly the processes it recorded.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one supervised component.
type Process struct {
	// Name names the process in messages.
	Name string
	// Argv is the command line; Argv[0] must be an absolute path, because liveness is
	// checked by comparing /proc/<pid>/exe with it (a recycled PID is not ours).
	Argv []string
	// Env is added to the provider's environment (KEY=VALUE).
	Env []string
	// PIDFile and LogFile are where the PID and the combined output go.
	PIDFile, LogFile string
}

// Start launches p detached: a new session, stdin from /dev/null, output appended to the
// log file after a header line. It returns the PID, already written to the PID file.
func Start(p Process) (int, error) {
	if len(p.Argv) == 0 || !filepath.IsAbs(p.Argv[0]) {
		return 0, fmt.Errorf("start %s: field Argv[0] must be an absolute path, got %q", p.Name, p.Argv)
	}
	for _, d := range []string{filepath.Dir(p.PIDFile), filepath.Dir(p.LogFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, fmt.Errorf("start %s: %w", p.Name, err)
		}
	}
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("start %s: open log: %w", p.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== gatecheck started %s at %s: %s\n", p.Name, time.Now().UTC().Format(time.RFC3339Nano), strings.Join(append(slices.Clone(p.Env), p.Argv...), " "))
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s (%s): %w", p.Name, p.Argv[0], err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while we are still running; once we exit, init adopts it.
	go func() { _ = cmd.Wait() }()
	// The executable is recorded with the PID so Stop finds the process even if the
	// configured binaries changed since it started.
	if err := os.WriteFile(p.PIDFile, []byte(strconv.Itoa(pid)+"\n"+p.Argv[0]+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("start %s: write pid file: %w", p.Name, err)
	}
	return pid, nil
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec. Go opens its own
// files close-on-exec, but descriptors gatecheck inherited stay open across exec, so the
// detached components kept them for their whole life: a lock taken with `flock LOCK gatecheck
// run --keep` was held by containerd, etcd and the kubelet until `cluster down` (the next
// `flock LOCK ...` waited forever), and a CI runner's pipe inherited the same way can keep a
// step from ending.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// ReadPID returns the PID and executable recorded in file, or 0 when there is none.
func ReadPID(file string) (int, string) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, ""
	}
	exe := ""
	if len(lines) > 1 {
		exe = strings.TrimSpace(lines[1])
	}
	return pid, exe
}

// Alive reports whether pid is a live (not zombie) process running exe.
func Alive(pid int, exe string) bool {
	if pid <= 0 {
		return false
	}
	got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false // gone, a zombie, or not ours to inspect
	}
	return strings.TrimSuffix(got, " (deleted)") == exe
}

// Running returns the recorded PID of p when that process is alive.
func Running(p Process) (int, bool) {
	pid, exe := ReadPID(p.PIDFile)
	if exe == "" && len(p.Argv) > 0 {
		exe = p.Argv[0]
	}
	return pid, Alive(pid, exe)
}

// Stop sends SIGTERM to p's recorded process, waits up to grace, then SIGKILL, and removes
// the PID file. A missing or stale PID file is not an error: Stop is safe after a crash.
func Stop(ctx context.Context, p Process, grace time.Duration) error {
	pid, ok := Running(p)
	if ok {
		_, exe := ReadPID(p.PIDFile)
		if exe == "" {
			exe = p.Argv[0]
		}
		if err := Signal(ctx, pid, exe, grace); err != nil {
			return fmt.Errorf("stop %s (pid %d): %w", p.Name, pid, err)
		}
	}
	if err := os.Remove(p.PIDFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stop %s: remove pid file: %w", p.Name, err)
	}
	return nil
}

// Signal terminates pid (which must still run exe): SIGTERM, then SIGKILL after grace.
func Signal(ctx context.Context, pid int, exe string, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(grace)
	for Alive(pid, exe) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 100 && Alive(pid, exe); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if Alive(pid, exe) {
		return fmt.Errorf("still running after SIGKILL")
	}
	return nil
}

// FindByExe lists the PIDs of live processes whose executable is exe (for containerd shims,
// which are started by containerd, not by us, and so have no PID file).
func FindByExe(exe string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if Alive(pid, exe) {
			pids = append(pids, pid)
		}
	}
	return pids
}
