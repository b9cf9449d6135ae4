package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/render"
)

func TestTrustRegistry(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	p := New(Options{StateDir: state, CacheDir: t.TempDir()})
	if _, _, err := p.TrustRegistry("127.0.0.1:5000"); err == nil || !strings.Contains(err.Error(), "is the host cluster up") {
		t.Fatalf("TrustRegistry without a cluster = %v; want an error saying the cluster is not up", err)
	}
	cfg := p.config(nil)
	if err := os.MkdirAll(cfg.ConfDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.ContainerdConfig(), []byte("version = 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.TrustRegistry("127.0.0.1:5000"); err == nil || !strings.Contains(err.Error(), "bring it down and up again") {
		t.Fatalf("TrustRegistry with an old containerd config = %v; want an error saying to bring the cluster up again", err)
	}
	if err := os.WriteFile(cfg.ContainerdConfig(), []byte(render.Containerd(cfg)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.0.0.1:5000", "registry.example.com:443", "127.0.0.1"} {
		if _, _, err := p.TrustRegistry(bad); err == nil {
			t.Errorf("TrustRegistry(%q) = nil; want refused (loopback HOST:PORT only)", bad)
		}
	}
	path, remove, err := p.TrustRegistry("127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(state, "containerd", "certs.d", "127.0.0.1:5000", "hosts.toml"); path != want {
		t.Errorf("hosts.toml at %s; want %s", path, want)
	}
	if data, err := os.ReadFile(path); err != nil || !strings.Contains(string(data), `server = "http://127.0.0.1:5000"`) {
		t.Errorf("hosts.toml = %q, %v; want server http://127.0.0.1:5000", data, err)
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after remove: %v; want hosts.toml gone", err)
	}
}
