package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/internal/command"
)

// Machine is what the detector asks of this machine.
type Machine interface {
	// ContainerEngine returns the first engine (docker, podman) whose daemon answers.
	ContainerEngine(ctx context.Context) (string, error)
	// RunPrivileged runs a tiny privileged container with engine; kind nodes need that.
	RunPrivileged(ctx context.Context, engine string) error
	// HostCapable says why the host provider cannot run here (not Linux, not root), or nil.
	HostCapable() error
}

// Detect picks kind when a container engine answers and can run privileged containers,
// else host on Linux as root, else fails saying what each option lacks.
func Detect(ctx context.Context, m Machine) (Name, string, error) {
	var kindWhy string
	engine, err := m.ContainerEngine(ctx)
	if err == nil {
		perr := m.RunPrivileged(ctx, engine)
		if perr == nil {
			return Kind, engine + " answers and runs privileged containers", nil
		}
		kindWhy = fmt.Sprintf("%s answers but cannot run a privileged container (kind nodes are privileged): %v", engine, perr)
	} else {
		kindWhy = err.Error()
	}
	if herr := m.HostCapable(); herr != nil {
		return "", "", fmt.Errorf("no usable cluster provider: kind: %s; host: %v; existing: pass --cluster existing with --kubeconfig", kindWhy, herr)
	}
	return Host, "kind unusable (" + kindWhy + "); Linux as root", nil
}

// LocalMachine probes this machine for real.
type LocalMachine struct {
	// ModuleRoot is used to build the pause image the privileged probe runs.
	ModuleRoot string
}

var _ Machine = LocalMachine{}

// ContainerEngine asks docker, then podman, for `info`.
func (l LocalMachine) ContainerEngine(ctx context.Context) (string, error) {
	var why []string
	for _, e := range []string{"docker", "podman"} {
		if _, err := exec.LookPath(e); err != nil {
			why = append(why, e+" not installed")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := command.Output(cctx, e, "info")
		cancel()
		if err == nil {
			return e, nil
		}
		why = append(why, fmt.Sprintf("%s installed but its daemon does not answer (%s info failed)", e, e))
	}
	return "", errors.New("no container engine: " + strings.Join(why, "; "))
}

// RunPrivileged loads gatecheck's pause image into the engine and runs it privileged.
func (l LocalMachine) RunPrivileged(ctx context.Context, engine string) error {
	if l.ModuleRoot == "" {
		return errors.New("cannot build the probe image: no gatecheck checkout found")
	}
	// The builder reuses the archive when nothing it is built from changed.
	built, err := (images.Builder{ModuleRoot: l.ModuleRoot, OutDir: filepath.Join(CacheDir(), "images")}).Build(ctx, []images.Spec{images.Pause()})
	if err != nil {
		return err
	}
	if _, err := command.Output(ctx, engine, "load", "-i", built[0].Archive); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = command.Output(cctx, engine, "run", "--rm", "--privileged", "--network", "none", images.PauseImage, "-v")
	return err
}

// HostCapable requires Linux and root.
func (LocalMachine) HostCapable() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("needs Linux; this is %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (it runs containerd, the kubelet and iptables)")
	}
	return nil
}

// Resolve turns a --cluster value into a provider name: the value itself, else (when
// remember) the provider `cluster up` last used, else detection. The reason says why.
func Resolve(ctx context.Context, flag string, remember bool, m Machine) (Name, string, error) {
	n, err := ParseName(flag)
	if err != nil {
		return "", "", err
	}
	if n != "" {
		return n, "--cluster " + string(n), nil
	}
	if remember {
		if r := Recorded(); r != "" {
			return r, "used by the last `gatecheck cluster up` (" + recordFile() + ")", nil
		}
	}
	return Detect(ctx, m)
}
