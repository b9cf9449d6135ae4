// Package command runs external tools (apt-get, iptables, ip, ctr, go) and turns failures
// into errors that keep a pasteable command line and the captured output, like kind's exec.
package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// RunError is a failed command: the command line as it could be pasted into a shell, the
// underlying error and everything it wrote.
type RunError struct {
	Command []string
	Output  []byte
	Inner   error
}

func (e *RunError) Error() string {
	out := strings.TrimSpace(string(e.Output))
	if len(out) > 2000 {
		out = "..." + out[len(out)-2000:]
	}
	if out == "" {
		return fmt.Sprintf("command %q failed: %v", Quote(e.Command), e.Inner)
	}
	return fmt.Sprintf("command %q failed: %v; output:\n%s", Quote(e.Command), e.Inner, out)
}

func (e *RunError) Unwrap() error { return e.Inner }

// Quote renders argv as a shell command line, quoting only where needed.
func Quote(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$\\|&;<>()*?[]{}!#~`") {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// Output runs argv and returns its stdout. Only stdout is ever data: stderr carries
// progress and warnings (`go: downloading ...` on a cold module cache, ctr's notices) that
// must never be parsed. On failure the error is a *RunError holding stdout and stderr.
func Output(ctx context.Context, argv ...string) ([]byte, error) {
	return OutputEnv(ctx, nil, argv...)
}

// OutputEnv is Output with extra environment variables (KEY=VALUE) on top of the process's.
func OutputEnv(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	return OutputDir(ctx, env, "", argv...)
}

// OutputDir is OutputEnv run in dir ("" is the current directory).
func OutputDir(ctx context.Context, env []string, dir string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(cmd.Environ(), env...)
	}
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), &RunError{Command: argv, Output: append(out.Bytes(), errb.Bytes()...), Inner: err}
	}
	return out.Bytes(), nil
}

// Stream runs argv with its output copied to w as it happens (for long steps whose output
// is the progress), and also keeps the tail for the error.
func Stream(ctx context.Context, w io.Writer, env []string, dir string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(cmd.Environ(), env...)
	}
	cmd.Dir = dir
	var tail bytes.Buffer
	mw := io.MultiWriter(w, &tail)
	cmd.Stdout = mw
	cmd.Stderr = mw
	if err := cmd.Run(); err != nil {
		return &RunError{Command: argv, Output: tail.Bytes(), Inner: err}
	}
	return nil
}
