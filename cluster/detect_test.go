package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type fakeMachine struct {
	engine     string
	engineErr  error
	privErr    error
	hostErr    error
	privCalled bool
}

func (f *fakeMachine) ContainerEngine(context.Context) (string, error) { return f.engine, f.engineErr }
func (f *fakeMachine) RunPrivileged(context.Context, string) error {
	f.privCalled = true
	return f.privErr
}
func (f *fakeMachine) HostCapable() error { return f.hostErr }

func TestDetect(t *testing.T) {
	t.Parallel()
	noEngine := errors.New("no container engine: docker installed but its daemon does not answer")
	tests := []struct {
		name       string
		m          fakeMachine
		want       Name
		wantErrHas []string
	}{
		{"engine with privileged containers", fakeMachine{engine: "docker"}, Kind, nil},
		{"engine without privileged, root", fakeMachine{engine: "docker", privErr: errors.New("operation not permitted")}, Host, nil},
		{"no engine, root", fakeMachine{engineErr: noEngine}, Host, nil},
		{"no engine, not root", fakeMachine{engineErr: noEngine, hostErr: errors.New("needs root")},
			"", []string{"daemon does not answer", "needs root", "--cluster existing"}},
		{"unprivileged engine, not linux", fakeMachine{engine: "podman", privErr: errors.New("EPERM"), hostErr: errors.New("needs Linux; this is darwin")},
			"", []string{"podman answers but cannot run a privileged container", "needs Linux"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := tt.m
			got, why, err := Detect(context.Background(), &m)
			if got != tt.want {
				t.Errorf("Detect = %q (%s); want %q", got, why, tt.want)
			}
			if tt.wantErrHas == nil {
				if err != nil || why == "" {
					t.Errorf("err, reason = %v, %q; want nil and a reason", err, why)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil error; want one mentioning %v", tt.wantErrHas)
			}
			for _, s := range tt.wantErrHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q; want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestDetectSkipsPrivilegedProbeWithoutEngine(t *testing.T) {
	t.Parallel()
	m := &fakeMachine{engineErr: errors.New("no engine")}
	if _, _, err := Detect(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if m.privCalled {
		t.Errorf("RunPrivileged called without an engine; want skipped")
	}
}

func TestResolveFlagWins(t *testing.T) {
	t.Parallel()
	m := &fakeMachine{engine: "docker"}
	for _, tt := range []struct {
		flag string
		want Name
	}{{"host", Host}, {"KIND", Kind}, {"existing", Existing}} {
		got, _, err := Resolve(context.Background(), tt.flag, false, m)
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.flag, got, err, tt.want)
		}
	}
	if _, _, err := Resolve(context.Background(), "minikube", false, m); err == nil || !strings.Contains(err.Error(), "want kind, host or existing") {
		t.Errorf("Resolve(minikube) error = %v; want one listing the choices", err)
	}
}

func TestRecordAndRecall(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	if got := Recorded(); got != "" {
		t.Fatalf("Recorded before Record = %q; want empty", got)
	}
	if err := Record(Host); err != nil {
		t.Fatal(err)
	}
	got, why, err := Resolve(context.Background(), "", true, &fakeMachine{engine: "docker"})
	if err != nil || got != Host || !strings.Contains(why, "last") {
		t.Errorf("Resolve with a record = %q, %q, %v; want host from the record", got, why, err)
	}
}
