// Package existing uses a cluster someone else runs, from a kubeconfig; it never creates or
// deletes anything.
package existing

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kindprovider "github.com/gatecheck/gatecheck/cluster/internal/providers/kind"
	"github.com/gatecheck/gatecheck/cluster/internal/status"
)

// ErrNoImageLoading says images cannot be loaded into a cluster gatecheck does not run (one
// that is not a kind cluster this machine runs).
var ErrNoImageLoading = errors.New("an existing cluster has no image loading unless it is a kind cluster on this machine: push the images to a registry its nodes can pull from (gatecheck run --registry, gatecheck images push --registry), or use --cluster host|kind")

// Provider is an existing cluster.
type Provider struct {
	kubeconfig string
	// context is the kubeconfig context chosen with --context ("" for the current one).
	context string
	log     *slog.Logger
	// kind is what detection found (kind.go): a kind cluster on this machine gets its images
	// through kind's loader, as clusters the kind provider creates do.
	kind *kindState
	// newKindLoader is kind's Go API for a node provider (kind.NewLoader); tests replace it.
	newKindLoader func(nodeProvider string) (KindLoader, error)
}

// New returns a provider for the cluster in kubeconfig (a path; empty means KUBECONFIG or
// ~/.kube/config, as kubectl resolves it).
func New(kubeconfig string, log *slog.Logger) *Provider {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if kubeconfig == "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if files := rules.GetLoadingPrecedence(); len(files) > 0 {
			kubeconfig = files[0]
		}
	}
	p := &Provider{kubeconfig: kubeconfig, log: log}
	p.newKindLoader = func(np string) (KindLoader, error) { return kindprovider.NewLoader(np, p.log) }
	return p
}

// NewWithContext is New for one context of the kubeconfig (kubeconfig "" loads KUBECONFIG,
// every file of it, or ~/.kube/config, as kubectl does). Everything gatecheck runs reads one
// kubeconfig path, the suites and the upstream suite in their own processes, kubectl, helm and
// scripts too, so the context is made the current one of a copy: that context alone (its
// cluster and user, paths made absolute), written 0600 under dir. An unknown context is an
// error listing the kubeconfig's contexts.
func NewWithContext(kubeconfig, context, dir string, log *slog.Logger) (*Provider, error) {
	if context == "" {
		return New(kubeconfig, log), nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	from := kubeconfig
	if from == "" {
		from = strings.Join(rules.GetLoadingPrecedence(), string(os.PathListSeparator))
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("--context %s: load kubeconfig %s: %w", context, from, err)
	}
	if _, ok := cfg.Contexts[context]; !ok {
		names := make([]string, 0, len(cfg.Contexts))
		for n := range cfg.Contexts {
			names = append(names, n)
		}
		sort.Strings(names)
		avail := strings.Join(names, ", ")
		if avail == "" {
			avail = "none"
		}
		return nil, fmt.Errorf("--context %q: no such context in kubeconfig %s (available: %s)", context, from, avail)
	}
	cfg.CurrentContext = context
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, fmt.Errorf("--context %s: kubeconfig %s: %w", context, from, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--context %s: %w", context, err)
	}
	sum := sha256.Sum256([]byte(from + "\x00" + context))
	path := filepath.Join(dir, fmt.Sprintf("context-%x.kubeconfig", sum[:6]))
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("--context %s: encode kubeconfig: %w", context, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("--context %s: write kubeconfig: %w", context, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Debug("kubeconfig for --context", "context", context, "from", from, "path", path)
	p := New(path, log)
	p.context = context
	return p, nil
}

// Context is the kubeconfig context chosen with --context, or "" for the kubeconfig's current one.
func (p *Provider) Context() string { return p.context }

func (p *Provider) client() (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("existing cluster: load kubeconfig %s: %w", p.kubeconfig, err)
	}
	rc.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(rc)
}

func (p *Provider) version(ctx context.Context) (string, error) {
	cs, err := p.client()
	if err != nil {
		return "", err
	}
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return "", fmt.Errorf("existing cluster from %s is not ready: %w", p.kubeconfig, err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// Up checks the cluster answers; it creates nothing.
func (p *Provider) Up(ctx context.Context) error {
	v, err := p.version(ctx)
	if err != nil {
		return err
	}
	p.log.Info("using existing cluster", "kubeconfig", p.kubeconfig, "context", p.context, "kubernetes", v)
	switch k := p.detectKind(ctx); {
	case k.loadable:
		p.log.Info("existing cluster is a kind cluster on this machine: images are loaded with kind's loader", "kind", k.cluster.Name, "nodeProvider", k.cluster.NodeProvider, "evidence", k.cluster.Evidence)
	case k.cluster.Name != "":
		p.log.Warn("existing cluster is kind's, but its images cannot be loaded from here", "why", k.why)
	default:
		p.log.Debug("existing cluster is not a kind cluster", "why", k.why)
	}
	return nil
}

// Down never deletes an existing cluster.
func (p *Provider) Down(context.Context) error {
	p.log.Info("existing cluster left running: gatecheck never deletes a cluster it did not create", "kubeconfig", p.kubeconfig)
	return nil
}

// Kubeconfig is the kubeconfig path in use.
func (p *Provider) Kubeconfig() string { return p.kubeconfig }

// LoadImages imports archives into every node with kind's loader when the cluster is a kind
// cluster this machine runs (detectKind); any other existing cluster cannot load images.
func (p *Provider) LoadImages(ctx context.Context, archives []string) error {
	k := p.detectKind(ctx)
	if !k.loadable {
		return fmt.Errorf("%w (%s)", ErrNoImageLoading, k.why)
	}
	for _, a := range archives {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := k.loader.LoadArchive(k.cluster.Name, a); err != nil {
			return fmt.Errorf("load image archive %s into kind cluster %s: %w", a, k.cluster.Name, err)
		}
		p.log.Info("loaded image archive with kind's loader", "archive", a, "kind", k.cluster.Name, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Owned is false: the cluster is someone else's, so a run removes only what it installed.
func (p *Provider) Owned() bool { return false }

// CanLoadImages is true, after Up, for a kind cluster this machine runs (kind's loader reaches
// every node); otherwise the nodes must already have (or be able to pull) the images.
func (p *Provider) CanLoadImages() bool { return p.kind != nil && p.kind.loadable }

// Describe reports reachability and version.
func (p *Provider) Describe(ctx context.Context) (status.Status, error) {
	st := status.Status{Provider: "existing", Kubeconfig: p.kubeconfig}
	if p.context != "" {
		st.Details = append(st.Details, "context "+p.context+" (made current in this copy of the kubeconfig)")
	}
	v, err := p.version(ctx)
	if err != nil {
		st.Details = append(st.Details, err.Error())
		return st, nil
	}
	st.Up, st.KubernetesVersion = true, v
	if k := p.detectKind(ctx); k.loadable {
		st.Details = append(st.Details, fmt.Sprintf("kind cluster %s on this machine (%s): images are loaded with kind's loader", k.cluster.Name, k.cluster.Evidence))
	} else {
		st.Details = append(st.Details, "images cannot be loaded: "+k.why)
	}
	return st, nil
}
