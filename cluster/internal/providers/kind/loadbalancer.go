package kind

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/cluster/internal/loadbalancer"
	"github.com/gatecheck/gatecheck/internal/command"
)

// engine is the container engine kind uses: KIND_EXPERIMENTAL_PROVIDER when set, else docker
// when installed, else podman (kind's own order, without nerdctl).
func engine() string {
	if e := os.Getenv("KIND_EXPERIMENTAL_PROVIDER"); e != "" {
		return e
	}
	if _, err := exec.LookPath("docker"); err == nil {
		return "docker"
	}
	return "podman"
}

// network is the network kind attaches its nodes to.
func network() string {
	if n := os.Getenv("KIND_EXPERIMENTAL_DOCKER_NETWORK"); n != "" {
		return n
	}
	return NetworkName
}

// Pool computes MetalLB's pool from `<engine> network inspect <network>`.
func Pool(ctx context.Context) (string, error) {
	e, n := engine(), network()
	out, err := command.Output(ctx, e, "network", "inspect", n)
	if err != nil {
		return "", fmt.Errorf("inspect the kind network: %w", err)
	}
	pool, err := PoolFromNetworkInspect(out)
	if err != nil {
		return "", fmt.Errorf("%s network inspect %s: %w", e, n, err)
	}
	return pool, nil
}

// HowToReach says how the runner on this machine reaches LoadBalancer addresses on the kind
// network, from `docker info` (Podman: always port-forward, its network lives in a VM on macOS
// and a rootless namespace by default on Linux).
func HowToReach(ctx context.Context) (Reach, string, error) {
	if engine() != "docker" {
		return ReachPortForward, engine() + ": its kind network is not assumed routable from here", nil
	}
	out, err := command.Output(ctx, "docker", "info", "--format", "{{json .}}")
	if err != nil {
		return "", "", fmt.Errorf("docker info: %w", err)
	}
	return ReachFromEngineInfo(runtime.GOOS, out)
}

// loadBalancer installs MetalLB with its speaker in L2 mode and a pool on the kind network:
// the speaker answers ARP for pool addresses on the network the nodes share, which the
// runner reaches directly where that network is a local bridge (HowToReach).
func (p *Provider) loadBalancer(ctx context.Context) (string, error) {
	pool, err := Pool(ctx)
	if err != nil {
		return "", err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", p.opts.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("load kubeconfig %s: %w", p.opts.Kubeconfig, err)
	}
	if loadbalancer.Installed(ctx, rc) {
		return pool, nil
	}
	if p.opts.ModuleRoot == "" || p.opts.CacheDir == "" {
		return "", fmt.Errorf("MetalLB images: kind provider fields ModuleRoot and CacheDir are required")
	}
	built, err := images.Builder{ModuleRoot: p.opts.ModuleRoot, OutDir: filepath.Join(p.opts.CacheDir, "images"), Logger: p.log}.Build(ctx, loadbalancer.Images(true))
	if err != nil {
		return "", fmt.Errorf("MetalLB images: %w", err)
	}
	var archives []string
	for _, b := range built {
		archives = append(archives, b.Archive)
	}
	if err := p.LoadImages(ctx, archives); err != nil {
		return "", err
	}
	manifest, err := loadbalancer.Manifest(ctx)
	if err != nil {
		return "", err
	}
	return pool, loadbalancer.Install(ctx, rc, loadbalancer.Options{Manifest: manifest, Pool: []string{pool}, Speaker: true, Logger: p.log})
}

// GatewayReach is how the runner reaches Gateway addresses on this kind cluster: the
// profile's status-address where the kind network is a local bridge, else port-forward.
func (p *Provider) GatewayReach(ctx context.Context) (mode, why string, err error) {
	reach, why, err := HowToReach(ctx)
	return string(reach), why, err
}
