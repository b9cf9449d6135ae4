// Package existing uses a cluster someone else runs, from a kubeconfig; it never creates or
// deletes anything.
package existing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/cluster/internal/status"
)

// ErrNoImageLoading says images cannot be pushed into a cluster gatecheck does not run.
var ErrNoImageLoading = errors.New("an existing cluster has no image loading: push the images to a registry its nodes can pull from, or use --cluster host|kind")

// Provider is an existing cluster.
type Provider struct {
	kubeconfig string
	log        *slog.Logger
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
	return &Provider{kubeconfig: kubeconfig, log: log}
}

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
	p.log.Info("using existing cluster", "kubeconfig", p.kubeconfig, "kubernetes", v)
	return nil
}

// Down never deletes an existing cluster.
func (p *Provider) Down(context.Context) error {
	p.log.Info("existing cluster left running: gatecheck never deletes a cluster it did not create", "kubeconfig", p.kubeconfig)
	return nil
}

// Kubeconfig is the kubeconfig path in use.
func (p *Provider) Kubeconfig() string { return p.kubeconfig }

// LoadImages is not possible without a registry.
func (p *Provider) LoadImages(context.Context, []string) error { return ErrNoImageLoading }

// Owned is false: the cluster is someone else's, so a run removes only what it installed.
func (p *Provider) Owned() bool { return false }

// CanLoadImages is false: the nodes must already have (or be able to pull) the images.
func (p *Provider) CanLoadImages() bool { return false }

// Describe reports reachability and version.
func (p *Provider) Describe(ctx context.Context) (status.Status, error) {
	st := status.Status{Provider: "existing", Kubeconfig: p.kubeconfig}
	v, err := p.version(ctx)
	if err != nil {
		st.Details = append(st.Details, err.Error())
		return st, nil
	}
	st.Up, st.KubernetesVersion = true, v
	return st, nil
}
