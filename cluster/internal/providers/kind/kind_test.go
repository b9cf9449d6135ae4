package kind

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// fakeAPI records the calls the provider makes; it stands in for kind itself, which needs
// a container engine that can run privileged containers.
type fakeAPI struct {
	clusters  []string
	createErr error
	calls     []string
	config    *v1alpha4.Cluster
	retain    bool
	lbErr     error
}

func (f *fakeAPI) Create(name string, config *v1alpha4.Cluster, kubeconfig string, retain bool) error {
	f.calls = append(f.calls, "create "+name+" "+kubeconfig)
	f.config, f.retain = config, retain
	if f.createErr != nil {
		return f.createErr
	}
	f.clusters = append(f.clusters, name)
	return nil
}

func (f *fakeAPI) Delete(name, kubeconfig string) error {
	f.calls = append(f.calls, "delete "+name+" "+kubeconfig)
	var keep []string
	for _, c := range f.clusters {
		if c != name {
			keep = append(keep, c)
		}
	}
	f.clusters = keep
	return nil
}

func (f *fakeAPI) List() ([]string, error) { return f.clusters, nil }

func (f *fakeAPI) loadBalancer(context.Context, *Provider) (string, error) {
	f.calls = append(f.calls, "load balancer")
	return "172.18.255.200-172.18.255.250", f.lbErr
}

func (f *fakeAPI) LoadArchive(name, archive string) error {
	f.calls = append(f.calls, "load "+name+" "+filepath.Base(archive))
	return nil
}

func repoConfig(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs("../../../../kind-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRepoConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(repoConfig(t))
	if err != nil {
		t.Fatalf("repo kind-config.yaml: %v", err)
	}
	if cfg.Name != "gatecheck" || len(cfg.Nodes) != 1 {
		t.Fatalf("name, nodes = %q, %d; want gatecheck, 1", cfg.Name, len(cfg.Nodes))
	}
	n := cfg.Nodes[0]
	if n.Image != defaults.Image {
		t.Errorf("node image = %s; want kind v0.33.0's pinned default %s", n.Image, defaults.Image)
	}
	// Gateways are reached at their LoadBalancer address (MetalLB on the kind network) or by
	// port-forward; a host port mapping would serve nothing (no pod listens on node ports).
	if len(n.ExtraPortMappings) != 0 {
		t.Errorf("extraPortMappings %+v; want none", n.ExtraPortMappings)
	}
}

func TestLoadConfigRejects(t *testing.T) {
	t.Parallel()
	base, err := os.ReadFile(repoConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, wantErr string
	}{
		{"unpinned image", "@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5", "", "not pinned by digest"},
		{"unknown field", "name: gatecheck", "name: gatecheck\nbogus: 1", "bogus"},
		{"no name", "name: gatecheck\n", "", "field name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			edited := strings.Replace(string(base), tt.old, tt.new, 1)
			if edited == string(base) {
				t.Fatalf("edit %q did not apply", tt.old)
			}
			path := filepath.Join(t.TempDir(), "kind-config.yaml")
			os.WriteFile(path, []byte(edited), 0o644)
			_, err := LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestUpDownCalls(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	kc := filepath.Join(t.TempDir(), "kind", "kubeconfig")
	p := New(Options{ConfigPath: repoConfig(t), Kubeconfig: kc, API: api, LoadBalancer: api.loadBalancer})
	ctx := context.Background()
	if err := p.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := p.Up(ctx); err != nil { // already up: no second create
		t.Fatalf("second Up: %v", err)
	}
	if err := p.LoadImages(ctx, []string{"/tmp/echo-backend.tar"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Down(ctx); err != nil { // already down: no second delete
		t.Fatal(err)
	}
	// The load balancer is installed after create, and again (idempotent) on an Up that finds
	// the cluster up.
	want := []string{"create gatecheck " + kc, "load balancer", "load balancer", "load gatecheck echo-backend.tar", "delete gatecheck " + kc}
	if diff := cmp.Diff(want, api.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if api.config == nil || api.config.Name != "gatecheck" {
		t.Errorf("create got config %+v; want the repo config", api.config)
	}
	if api.retain {
		t.Errorf("create retain = true; want false without Keep")
	}
}

func TestFailedCreateIsDeletedUnlessKept(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		api := &fakeAPI{createErr: errors.New("node failed to start")}
		p := New(Options{ConfigPath: repoConfig(t), Kubeconfig: filepath.Join(t.TempDir(), "kc"), Keep: keep, API: api, LoadBalancer: api.loadBalancer})
		err := p.Up(context.Background())
		if err == nil || !strings.Contains(err.Error(), "node failed to start") {
			t.Errorf("keep=%v: Up error %v; want the create error", keep, err)
		}
		deleted := len(api.calls) == 2 && strings.HasPrefix(api.calls[1], "delete gatecheck")
		if deleted == keep {
			t.Errorf("keep=%v: calls %v; want delete only without keep", keep, api.calls)
		}
		if api.retain != keep {
			t.Errorf("keep=%v: retain = %v; want %v", keep, api.retain, keep)
		}
	}
}

func TestFailedLoadBalancerDeletesClusterUnlessKept(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		api := &fakeAPI{lbErr: errors.New("MetalLB controller not available")}
		p := New(Options{ConfigPath: repoConfig(t), Kubeconfig: filepath.Join(t.TempDir(), "kc"), Keep: keep, API: api, LoadBalancer: api.loadBalancer})
		err := p.Up(context.Background())
		if err == nil || !strings.Contains(err.Error(), "MetalLB controller not available") {
			t.Errorf("keep=%v: Up error %v; want the load balancer error", keep, err)
		}
		deleted := len(api.calls) == 3 && strings.HasPrefix(api.calls[2], "delete gatecheck")
		if deleted == keep {
			t.Errorf("keep=%v: calls %v; want delete only without keep", keep, api.calls)
		}
	}
}
