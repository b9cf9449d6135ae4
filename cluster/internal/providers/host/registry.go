package host

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/render"
)

// TrustRegistry lets the host cluster's containerd pull from the plain-HTTP registry at
// hostPort, a registry on this machine's loopback (`gatecheck registry serve`, for a run with
// --registry): it writes hostPort's hosts.toml under containerd's config_path, which containerd
// reads at every pull, so no restart is needed. It returns the file and a func that removes it.
// Other hosts are refused: the cluster must not pull over plain HTTP from the network.
func (p *Provider) TrustRegistry(hostPort string) (string, func() error, error) {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", nil, fmt.Errorf("registry %q: want HOST:PORT: %w", hostPort, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, fmt.Errorf("registry %s: the host cluster trusts plain-HTTP registries on loopback only (127.0.0.1, localhost, ::1)", hostPort)
	}
	cfg := p.config(nil)
	data, err := os.ReadFile(cfg.ContainerdConfig())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("host cluster: no containerd config at %s: is the host cluster up (gatecheck cluster up --cluster host)?", cfg.ContainerdConfig())
	}
	if err != nil {
		return "", nil, fmt.Errorf("host cluster: %w", err)
	}
	if !strings.Contains(string(data), "config_path = '"+cfg.RegistryHostsDir()+"'") {
		return "", nil, fmt.Errorf("host cluster: containerd runs with %s, which has no registry config_path %s (an older gatecheck brought it up): bring it down and up again", cfg.ContainerdConfig(), cfg.RegistryHostsDir())
	}
	dir := filepath.Join(cfg.RegistryHostsDir(), strings.ReplaceAll(hostPort, "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("host cluster: trust registry %s: %w", hostPort, err)
	}
	path := filepath.Join(dir, "hosts.toml")
	if err := os.WriteFile(path, []byte(render.RegistryHosts(hostPort)), 0o644); err != nil {
		return "", nil, fmt.Errorf("host cluster: trust registry %s: %w", hostPort, err)
	}
	p.log.Info("host cluster's containerd pulls from the plain-HTTP registry", "registry", hostPort, "hosts.toml", path)
	return path, func() error { return os.RemoveAll(dir) }, nil
}
