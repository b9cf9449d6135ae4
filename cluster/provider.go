package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/existing"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/kind"
	"github.com/gatecheck/gatecheck/cluster/internal/status"
)

// Provider runs one kind of cluster.
type Provider interface {
	// Up brings the cluster up and waits until it can run pods; already up is success.
	Up(ctx context.Context) error
	// Down tears down what Up made; already down is success.
	Down(ctx context.Context) error
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig() string
	// LoadImages makes docker-archive tarballs' images available to the cluster's nodes.
	LoadImages(ctx context.Context, archives []string) error
	// CanLoadImages reports whether LoadImages can put images on the nodes (not on a cluster
	// gatecheck was given: there the nodes must already have or pull them).
	CanLoadImages() bool
	// Owned reports whether gatecheck created the cluster, so that Down removes all of it; a
	// run on a cluster it was given removes only what the run installed.
	Owned() bool
	// Describe reports whether the cluster is up, its version and provider details.
	Describe(ctx context.Context) (Status, error)
}

// Status is what Describe reports.
type Status = status.Status

// Name names a provider.
type Name string

// The providers.
const (
	Kind     Name = "kind"
	Host     Name = "host"
	Existing Name = "existing"
)

// ParseName checks a --cluster value; "" means detect.
func ParseName(s string) (Name, error) {
	switch n := Name(strings.ToLower(strings.TrimSpace(s))); n {
	case "", Kind, Host, Existing:
		return n, nil
	default:
		return "", fmt.Errorf("--cluster %q: want kind, host or existing", s)
	}
}

// Options configure every provider; each uses the fields that concern it.
type Options struct {
	// Kubeconfig is the existing cluster's kubeconfig (default KUBECONFIG, ~/.kube/config).
	Kubeconfig string
	// Context is the existing cluster's kubeconfig context (default its current context);
	// only --cluster existing takes one.
	Context string
	// Keep leaves a cluster that failed to come up, for debugging.
	Keep bool
	// ModuleRoot is the gatecheck checkout; default found from the working directory.
	ModuleRoot string
	// HostStateDir overrides the host cluster's state dir (default /var/lib/gatecheck/host).
	HostStateDir string
	// Logger receives progress.
	Logger *slog.Logger
}

// StateDir is gatecheck's per-user state: $XDG_STATE_HOME/gatecheck or ~/.local/state/gatecheck.
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "gatecheck")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "gatecheck")
}

// CacheDir is where built binaries and images go: $GATECHECK_CACHE or ~/.cache/gatecheck.
func CacheDir() string {
	if d := os.Getenv("GATECHECK_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "gatecheck")
}

// New returns the named provider. It does not touch the machine.
func New(name Name, opts Options) (Provider, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ModuleRoot == "" {
		opts.ModuleRoot, _ = ModuleRoot("")
	}
	if opts.Context != "" && name != Existing {
		return nil, fmt.Errorf("--context %s: only --cluster existing takes a kubeconfig context (%s writes its own kubeconfig)", opts.Context, name)
	}
	switch name {
	case Host:
		return host.New(host.Options{StateDir: opts.HostStateDir, CacheDir: CacheDir(), ModuleRoot: opts.ModuleRoot, Keep: opts.Keep, Logger: opts.Logger.With("cluster", "host")}), nil
	case Kind:
		root := opts.ModuleRoot
		if root == "" {
			var err error
			if root, err = FilesRoot(); err != nil {
				return nil, fmt.Errorf("kind provider: kind-config.yaml: %w", err)
			}
		}
		return kind.New(kind.Options{
			ConfigPath: filepath.Join(root, "kind-config.yaml"),
			Kubeconfig: filepath.Join(StateDir(), "kind", "kubeconfig"),
			Keep:       opts.Keep,
			// MetalLB's images are module@version builds: any directory serves as root.
			ModuleRoot: root,
			CacheDir:   CacheDir(),
			Logger:     opts.Logger.With("cluster", "kind"),
		}), nil
	case Existing:
		p, err := existing.NewWithContext(opts.Kubeconfig, opts.Context, filepath.Join(StateDir(), "existing"), opts.Logger.With("cluster", "existing"))
		if err != nil {
			return nil, err
		}
		return p, nil
	default:
		return nil, fmt.Errorf("unknown cluster provider %q: want kind, host or existing", name)
	}
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}

// ModuleRoot finds the gatecheck checkout at or above dir (default: the working directory).
func ModuleRoot(dir string) (string, error) {
	if dir == "" {
		dir = mustGetwd()
	}
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/gatecheck/gatecheck\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no gatecheck checkout (go.mod of github.com/gatecheck/gatecheck) at or above %s", dir)
		}
	}
}

// recordFile remembers which provider `cluster up` used, so `down` and `status` without
// --cluster act on the same cluster.
func recordFile() string { return filepath.Join(StateDir(), "current-cluster") }

// Record remembers name as the provider in use.
func Record(name Name) error {
	if err := os.MkdirAll(StateDir(), 0o755); err != nil {
		return err
	}
	return os.WriteFile(recordFile(), []byte(string(name)+"\n"), 0o644)
}

// Recorded returns the provider `cluster up` last used, or "".
func Recorded() Name {
	data, err := os.ReadFile(recordFile())
	if err != nil {
		return ""
	}
	n, err := ParseName(string(data))
	if err != nil {
		return ""
	}
	return n
}

var (
	_ Provider = (*host.Provider)(nil)
	_ Provider = (*kind.Provider)(nil)
	_ Provider = (*existing.Provider)(nil)
)
