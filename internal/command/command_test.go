package command

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"iptables", "-w", "-t", "nat", "-S"}, "iptables -w -t nat -S"},
		{[]string{"iptables", "--comment", "kubernetes service portals"}, "iptables --comment 'kubernetes service portals'"},
		{[]string{"sh", "-c", "echo 'hi'"}, `sh -c 'echo '\''hi'\'''`},
		{[]string{"x", ""}, "x ''"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := Quote(tt.argv); got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

func TestOutputErrorKeepsCommandAndOutput(t *testing.T) {
	t.Parallel()
	_, err := Output(context.Background(), "sh", "-c", "echo boom >&2; exit 3")
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v; want *RunError", err, err)
	}
	msg := err.Error()
	for _, want := range []string{`sh -c 'echo boom >&2; exit 3'`, "exit status 3", "boom"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q; want it to contain %q", msg, want)
		}
	}
}

// A cold module cache makes go write "go: downloading ..." on stderr; a parser fed stderr
// broke a fresh machine's first run (issue 14). Output must return stdout alone.
func TestOutputIsStdoutOnly(t *testing.T) {
	t.Parallel()
	out, err := Output(context.Background(), "sh", "-c", "echo 'go: downloading example.com/m v1.0.0' >&2; echo main")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "main\n" {
		t.Errorf("got %q; want %q (stderr must not be data)", got, "main\n")
	}
}
