package kind

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindlog "sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/cluster/internal/status"
)

// API is the part of kind the provider calls, so tests can check the calls.
type API interface {
	// Create creates cluster name from config, writing its kubeconfig to kubeconfig;
	// retain keeps the nodes when creation fails.
	Create(name string, config *v1alpha4.Cluster, kubeconfig string, retain bool) error
	// Delete deletes cluster name and removes it from kubeconfig.
	Delete(name, kubeconfig string) error
	// List returns the names of existing kind clusters.
	List() ([]string, error)
	// LoadArchive imports a docker-archive tarball into every node of cluster name.
	LoadArchive(name, archive string) error
}

// Options configure the kind provider.
type Options struct {
	// ConfigPath is the kind config file (the repository's kind-config.yaml).
	ConfigPath string
	// Kubeconfig is where the cluster's kubeconfig is written (not ~/.kube/config).
	Kubeconfig string
	// Keep leaves a cluster that failed to come up, for debugging.
	Keep bool
	// Logger receives progress.
	Logger *slog.Logger
	// API defaults to kind's real provider (Docker, Podman or nerdctl, auto-detected).
	API API
	// ModuleRoot (a gatecheck checkout) and CacheDir are where MetalLB's images are built.
	ModuleRoot, CacheDir string
	// LoadBalancer installs the load balancer once the cluster is up and returns its pool;
	// default MetalLB (speaker in L2 mode, pool on the kind network). Tests replace it.
	LoadBalancer func(ctx context.Context, p *Provider) (pool string, err error)
}

// Provider is a kind cluster.
type Provider struct {
	opts Options
	log  *slog.Logger
}

// New returns a kind provider.
func New(opts Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.API == nil {
		opts.API = realAPI{p: kindcluster.NewProvider(kindcluster.ProviderWithLogger(slogAdapter{log}))}
	}
	if opts.LoadBalancer == nil {
		opts.LoadBalancer = func(ctx context.Context, p *Provider) (string, error) { return p.loadBalancer(ctx) }
	}
	return &Provider{opts: opts, log: log}
}

// LoadConfig reads and checks a kind config: one control-plane node and a node image pinned
// by digest. (Gateways are reached at their LoadBalancer address or by port-forward, never
// through host port mappings: see HowToReach.)
func LoadConfig(path string) (*v1alpha4.Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kind config: %w", err)
	}
	cfg := &v1alpha4.Cluster{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return nil, fmt.Errorf("parse kind config %s: %w", path, err)
	}
	if cfg.Kind != "Cluster" || cfg.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("kind config %s: kind/apiVersion %s/%s; want Cluster/kind.x-k8s.io/v1alpha4", path, cfg.Kind, cfg.APIVersion)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("kind config %s: field name is empty", path)
	}
	var cp []v1alpha4.Node
	for _, n := range cfg.Nodes {
		if n.Role == v1alpha4.ControlPlaneRole {
			cp = append(cp, n)
		}
	}
	if len(cp) != 1 {
		return nil, fmt.Errorf("kind config %s: field nodes has %d control-plane nodes; want 1", path, len(cp))
	}
	for i, n := range cfg.Nodes {
		if !strings.Contains(n.Image, "@sha256:") {
			return nil, fmt.Errorf("kind config %s: field nodes[%d].image %q is not pinned by digest", path, i, n.Image)
		}
	}
	return cfg, nil
}

func (p *Provider) name() string {
	if cfg, err := LoadConfig(p.opts.ConfigPath); err == nil {
		return cfg.Name
	}
	return "gatecheck"
}

func (p *Provider) exists(name string) (bool, error) {
	names, err := p.opts.API.List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters: %w", err)
	}
	return slices.Contains(names, name), nil
}

// Up creates the cluster unless it exists; a failed create is deleted unless Keep.
func (p *Provider) Up(ctx context.Context) error {
	start := time.Now()
	cfg, err := LoadConfig(p.opts.ConfigPath)
	if err != nil {
		return err
	}
	ok, err := p.exists(cfg.Name)
	if err != nil {
		return err
	}
	if ok {
		p.log.Info("kind cluster is already up", "name", cfg.Name, "kubeconfig", p.opts.Kubeconfig)
		// A cluster created by an older gatecheck may lack MetalLB; installing is idempotent.
		_, err := p.opts.LoadBalancer(ctx, p)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.opts.Kubeconfig), 0o700); err != nil {
		return fmt.Errorf("create kubeconfig dir: %w", err)
	}
	p.log.Info("creating kind cluster (pulls the node image the first time)", "name", cfg.Name, "image", cfg.Nodes[0].Image)
	// kind's API takes no context: run it aside so a cancelled ctx returns promptly.
	done := make(chan error, 1)
	go func() { done <- p.opts.API.Create(cfg.Name, cfg, p.opts.Kubeconfig, p.opts.Keep) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		if !p.opts.Keep {
			if derr := p.opts.API.Delete(cfg.Name, p.opts.Kubeconfig); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete failed cluster: %w", derr))
			}
		}
		return fmt.Errorf("create kind cluster %s: %w", cfg.Name, err)
	}
	pool, err := p.opts.LoadBalancer(ctx, p)
	if err != nil {
		if !p.opts.Keep {
			if derr := p.opts.API.Delete(cfg.Name, p.opts.Kubeconfig); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete failed cluster: %w", derr))
			}
		}
		return fmt.Errorf("kind cluster %s: load balancer: %w", cfg.Name, err)
	}
	p.log.Info("kind cluster up", "name", cfg.Name, "lbPool", pool, "took", time.Since(start).Round(time.Second), "kubeconfig", p.opts.Kubeconfig)
	return nil
}

// Down deletes the cluster; deleting a cluster that does not exist is not an error.
func (p *Provider) Down(ctx context.Context) error {
	name := p.name()
	ok, err := p.exists(name)
	if err != nil {
		return err
	}
	if !ok {
		p.log.Info("kind cluster is not running", "name", name)
		return nil
	}
	if err := p.opts.API.Delete(name, p.opts.Kubeconfig); err != nil {
		return fmt.Errorf("delete kind cluster %s: %w", name, err)
	}
	p.log.Info("kind cluster deleted", "name", name)
	return nil
}

// Kubeconfig is where Up wrote the cluster's kubeconfig.
func (p *Provider) Kubeconfig() string { return p.opts.Kubeconfig }

// Owned is true: Up created the cluster, Down deletes it.
func (p *Provider) Owned() bool { return true }

// CanLoadImages is true: LoadImages imports archives into every node.
func (p *Provider) CanLoadImages() bool { return true }

// LoadImages imports archives into every node.
func (p *Provider) LoadImages(ctx context.Context, archives []string) error {
	name := p.name()
	for _, a := range archives {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := p.opts.API.LoadArchive(name, a); err != nil {
			return fmt.Errorf("load image archive %s into kind cluster %s: %w", a, name, err)
		}
		p.log.Info("loaded image archive", "archive", a, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Describe says whether the cluster exists.
func (p *Provider) Describe(ctx context.Context) (status.Status, error) {
	name := p.name()
	st := status.Status{Provider: "kind", Kubeconfig: p.opts.Kubeconfig, Details: []string{"config: " + p.opts.ConfigPath, "name: " + name}}
	ok, err := p.exists(name)
	if err != nil {
		return st, err
	}
	st.Up = ok
	if ok {
		if pool, err := Pool(ctx); err == nil {
			st.LoadBalancerPool = pool
		} else {
			st.Details = append(st.Details, "load balancer pool: "+err.Error())
		}
		if reach, why, err := HowToReach(ctx); err == nil {
			st.Details = append(st.Details, fmt.Sprintf("gateway reach: %s (%s)", reach, why))
		}
	}
	return st, nil
}

// realAPI adapts kind's provider to API.
type realAPI struct{ p *kindcluster.Provider }

func (r realAPI) Create(name string, config *v1alpha4.Cluster, kubeconfig string, retain bool) error {
	return r.p.Create(name,
		kindcluster.CreateWithV1Alpha4Config(config),
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		kindcluster.CreateWithRetain(retain),
		kindcluster.CreateWithWaitForReady(5*time.Minute),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false))
}

func (r realAPI) Delete(name, kubeconfig string) error { return r.p.Delete(name, kubeconfig) }
func (r realAPI) List() ([]string, error)              { return r.p.List() }

// Loader is kind's image loading for a kind cluster gatecheck did not create (the existing
// provider uses it when the cluster's nodes say they are kind's).
type Loader interface {
	// Nodes lists the names of cluster name's nodes (kind's ListInternalNodes) that this
	// machine's container engine runs.
	Nodes(name string) ([]string, error)
	// LoadArchive imports a docker-archive tarball into every node of cluster name.
	LoadArchive(name, archive string) error
}

// NewLoader returns kind's Go API on the node provider a kind node's spec.providerID names
// (kind://<provider>/<cluster>/<node>): docker, podman or nerdctl (kind's nerdctl provider also
// drives finch); "" detects the engine as kind's own CLI does.
func NewLoader(nodeProvider string, log *slog.Logger) (Loader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []kindcluster.ProviderOption{kindcluster.ProviderWithLogger(slogAdapter{log})}
	switch nodeProvider {
	case "docker":
		opts = append(opts, kindcluster.ProviderWithDocker())
	case "podman":
		opts = append(opts, kindcluster.ProviderWithPodman())
	case "nerdctl":
		opts = append(opts, kindcluster.ProviderWithNerdctl(""))
	case "":
		o, err := kindcluster.DetectNodeProvider()
		if err != nil {
			return nil, fmt.Errorf("no container engine kind can use (docker, nerdctl, finch, podman): %w", err)
		}
		opts = append(opts, o)
	default:
		return nil, fmt.Errorf("node provider %q: kind v0.33.0 knows docker, podman and nerdctl", nodeProvider)
	}
	return realAPI{p: kindcluster.NewProvider(opts...)}, nil
}

func (r realAPI) Nodes(name string) ([]string, error) {
	nodes, err := r.p.ListInternalNodes(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.String())
	}
	return names, nil
}

func (r realAPI) LoadArchive(name, archive string) error {
	nodes, err := r.p.ListInternalNodes(name)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return fmt.Errorf("kind cluster %s has no nodes", name)
	}
	for _, n := range nodes {
		f, err := os.Open(archive)
		if err != nil {
			return err
		}
		err = nodeutils.LoadImageArchive(n, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", n.String(), err)
		}
	}
	return nil
}

// slogAdapter routes kind's log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Warn(m string)                        { a.l.Warn(m) }
func (a slogAdapter) Warnf(f string, args ...any)          { a.l.Warn(fmt.Sprintf(f, args...)) }
func (a slogAdapter) Error(m string)                       { a.l.Error(m) }
func (a slogAdapter) Errorf(f string, args ...any)         { a.l.Error(fmt.Sprintf(f, args...)) }
func (a slogAdapter) V(v kindlog.Level) kindlog.InfoLogger { return infoAdapter{a.l, v} }

type infoAdapter struct {
	l *slog.Logger
	v kindlog.Level
}

func (i infoAdapter) Info(m string) {
	if i.Enabled() {
		i.l.Info(m)
	}
}
func (i infoAdapter) Infof(f string, args ...any) { i.Info(fmt.Sprintf(f, args...)) }
func (i infoAdapter) Enabled() bool {
	if i.v == 0 {
		return true
	}
	return i.l.Enabled(context.Background(), slog.LevelDebug)
}
