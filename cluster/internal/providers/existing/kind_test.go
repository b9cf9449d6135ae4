package existing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// recordedKindNode is a real kind node object (testdata/node-kind-docker.yaml says where it
// was recorded).
func recordedKindNode(t *testing.T) corev1.Node {
	t.Helper()
	data, err := os.ReadFile("testdata/node-kind-docker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var n corev1.Node
	if err := yaml.UnmarshalStrict(data, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func node(name, providerID string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{ProviderID: providerID}}
}

func TestDetectKind(t *testing.T) {
	t.Parallel()
	// The providerIDs of a three-node kind cluster on Podman, as printed by
	// `kubectl node-provider-id` in the README of jossware/kubectl-node-provider-id at commit
	// 305ec93fce02e6fd9c965027761c0484786e0a6a.
	podman := []corev1.Node{
		node("node-prov-control-plane", "kind://podman/node-prov/node-prov-control-plane"),
		node("node-prov-worker", "kind://podman/node-prov/node-prov-worker"),
		node("node-prov-worker2", "kind://podman/node-prov/node-prov-worker2"),
	}
	// GKE nodes' providerIDs, as BenTheElder printed them from prow.k8s.io's services cluster
	// in kubernetes-sigs/kind#1711 (the issue that led kind to set providerIDs).
	gke := []corev1.Node{
		node("gke-prow-default-pool-116f5d3e-0hiz", "gce://k8s-prow/us-central1-f/gke-prow-default-pool-116f5d3e-0hiz"),
		node("gke-prow-default-pool-116f5d3e-6mef", "gce://k8s-prow/us-central1-f/gke-prow-default-pool-116f5d3e-6mef"),
	}
	tests := []struct {
		name    string
		nodes   []corev1.Node
		context string
		want    KindCluster
		wantOK  bool
		why     string // substring of why, when not kind
	}{
		{name: "recorded docker node", nodes: []corev1.Node{recordedKindNode(t)}, context: "kind-trishanku", wantOK: true,
			want: KindCluster{Name: "trishanku", NodeProvider: "docker", Nodes: []string{"trishanku-control-plane"}, Evidence: "every node's spec.providerID is kind://docker/trishanku/<node>"}},
		{name: "recorded docker node, renamed context", nodes: []corev1.Node{recordedKindNode(t)}, context: "ci", wantOK: true,
			want: KindCluster{Name: "trishanku", NodeProvider: "docker", Nodes: []string{"trishanku-control-plane"}, Evidence: "every node's spec.providerID is kind://docker/trishanku/<node>"}},
		{name: "recorded docker node, context of another kind cluster", nodes: []corev1.Node{recordedKindNode(t)}, context: "kind-kind", wantOK: true,
			want: KindCluster{Name: "trishanku", NodeProvider: "docker", Nodes: []string{"trishanku-control-plane"},
				Evidence: "every node's spec.providerID is kind://docker/trishanku/<node> (the context kind-kind names another; the nodes decide)"}},
		{name: "recorded podman nodes", nodes: podman, context: "kind-node-prov", wantOK: true,
			want: KindCluster{Name: "node-prov", NodeProvider: "podman", Nodes: []string{"node-prov-control-plane", "node-prov-worker", "node-prov-worker2"}, Evidence: "every node's spec.providerID is kind://podman/node-prov/<node>"}},
		{name: "gke", nodes: gke, context: "gke_k8s-prow_us-central1-f_prow", why: "no node has a kind:// providerID: gke-prow-default-pool-116f5d3e-0hiz (providerID gce://k8s-prow/"},
		{name: "no providerID, no kind context (the host cluster)", nodes: []corev1.Node{node("gatecheck", "")}, context: "gatecheck-host", why: "no node has a kind:// providerID: gatecheck (providerID none)"},
		{name: "kind context, kind names, no providerIDs (kind before v0.9.0)", nodes: []corev1.Node{node("dev-control-plane", ""), node("dev-worker", ""), node("dev-worker2", "")}, context: "kind-dev", wantOK: true,
			want: KindCluster{Name: "dev", Nodes: []string{"dev-control-plane", "dev-worker", "dev-worker2"}, Evidence: "context kind-dev and node names dev-control-plane, dev-worker, dev-worker2 (no kind:// providerIDs: kind before v0.9.0)"}},
		{name: "kind context, other names", nodes: []corev1.Node{node("dev-control-plane", ""), node("ip-10-0-0-1", "")}, context: "kind-dev", why: "node ip-10-0-0-1 is not named as kind names cluster dev's nodes"},
		{name: "kind context, another cluster's names", nodes: []corev1.Node{node("devx-control-plane", "")}, context: "kind-dev", why: "node devx-control-plane is not named"},
		{name: "mixed", nodes: append([]corev1.Node{recordedKindNode(t)}, gke[0]), why: "some nodes are kind cluster trishanku's, others are not: gke-prow-default-pool-116f5d3e-0hiz"},
		{name: "two kind clusters", nodes: []corev1.Node{recordedKindNode(t), podman[0]}, why: "more than one kind cluster: kind://docker/trishanku, kind://podman/node-prov"},
		{name: "providerID of another node", nodes: []corev1.Node{node("a", "kind://docker/c/b")}, why: `node a: spec.providerID "kind://docker/c/b" names another node`},
		{name: "malformed providerID", nodes: []corev1.Node{node("a", "kind://docker/a")}, why: "is not kind://<provider>/<cluster>/<node>"},
		{name: "no nodes", why: "the cluster has no nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok, why := DetectKind(tc.nodes, tc.context)
			if ok != tc.wantOK {
				t.Fatalf("DetectKind ok = %v (%s); want %v", ok, why, tc.wantOK)
			}
			if !ok {
				if !strings.Contains(why, tc.why) {
					t.Errorf("why = %q; want it to contain %q", why, tc.why)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DetectKind (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeKind stands in for kind's Go API, which needs a container engine.
type fakeKind struct {
	nodes   []string
	listErr error
	calls   []string
}

func (f *fakeKind) Nodes(name string) ([]string, error) {
	f.calls = append(f.calls, "nodes "+name)
	return f.nodes, f.listErr
}

func (f *fakeKind) LoadArchive(name, archive string) error {
	f.calls = append(f.calls, "load "+name+" "+filepath.Base(archive))
	return nil
}

// nodesServer is apiServer's loopback API server that also lists nodes; contextName is the
// kubeconfig's current context.
func nodesServer(t *testing.T, contextName string, nodes ...corev1.Node) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
	})
	mux.HandleFunc("/api/v1/nodes", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, Items: nodes})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: %q, context: {cluster: c, user: u}}]
current-context: %q
`, srv.URL, contextName, contextName)
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

// TestKindImages: an existing cluster whose nodes are a kind cluster this machine runs gets its
// images through kind's loader, on the node provider the providerIDs name; any other, or one
// whose nodes kind does not find here, cannot load images, and says why.
func TestKindImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kindNode := recordedKindNode(t)
	tests := []struct {
		name      string
		nodes     []corev1.Node
		kind      *fakeKind
		loaderErr error
		canLoad   bool
		provider  string   // node provider the loader was asked for
		calls     []string // kind calls, after Up and LoadImages
		why       string   // substring of LoadImages' error, when it cannot load
	}{
		{name: "kind here", nodes: []corev1.Node{kindNode}, kind: &fakeKind{nodes: []string{"trishanku-control-plane"}}, canLoad: true, provider: "docker",
			calls: []string{"nodes trishanku", "load trishanku a.tar", "load trishanku b.tar"}},
		{name: "kind elsewhere", nodes: []corev1.Node{kindNode}, kind: &fakeKind{listErr: errors.New(`unknown cluster "trishanku"`)}, provider: "docker",
			calls: []string{"nodes trishanku"}, why: `kind cannot list its nodes on this machine: unknown cluster "trishanku"`},
		{name: "another cluster of that name here", nodes: []corev1.Node{kindNode}, kind: &fakeKind{nodes: []string{"trishanku-control-plane", "trishanku-worker"}}, provider: "docker",
			calls: []string{"nodes trishanku"}, why: `this machine's docker runs its nodes ["trishanku-control-plane" "trishanku-worker"], the API server lists ["trishanku-control-plane"]`},
		{name: "no engine", nodes: []corev1.Node{kindNode}, loaderErr: errors.New("docker: not found"), provider: "docker",
			why: "kind cannot load images here: docker: not found"},
		{name: "not kind", nodes: []corev1.Node{node("gatecheck", "")}, kind: &fakeKind{},
			why: "no node has a kind:// providerID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := New(nodesServer(t, "kind-trishanku", tc.nodes...), nil)
			var asked []string
			p.newKindLoader = func(np string) (KindLoader, error) {
				asked = append(asked, np)
				if tc.loaderErr != nil {
					return nil, tc.loaderErr
				}
				return tc.kind, nil
			}
			if p.CanLoadImages() {
				t.Fatal("CanLoadImages before Up = true; want false (nothing detected yet)")
			}
			if err := p.Up(ctx); err != nil {
				t.Fatal(err)
			}
			if got := p.CanLoadImages(); got != tc.canLoad {
				t.Errorf("CanLoadImages = %v; want %v", got, tc.canLoad)
			}
			err := p.LoadImages(ctx, []string{"/x/a.tar", "/x/b.tar"})
			switch {
			case tc.canLoad && err != nil:
				t.Errorf("LoadImages: %v", err)
			case !tc.canLoad && (!errors.Is(err, ErrNoImageLoading) || !strings.Contains(err.Error(), tc.why)):
				t.Errorf("LoadImages: %v; want ErrNoImageLoading saying %q", err, tc.why)
			}
			if want := []string{tc.provider}; tc.provider == "" && len(asked) > 0 || tc.provider != "" && !slices.Equal(asked, want) {
				t.Errorf("kind loader asked for node providers %q; want %q", asked, slices.DeleteFunc(want, func(s string) bool { return s == "" }))
			}
			if tc.kind != nil {
				if diff := cmp.Diff(tc.calls, tc.kind.calls); diff != "" {
					t.Errorf("kind calls (-want +got):\n%s", diff)
				}
			}
			st, err := p.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := "images cannot be loaded: "
			if tc.canLoad {
				want = "kind cluster trishanku on this machine (every node's spec.providerID is kind://docker/trishanku/<node>): images are loaded with kind's loader"
			}
			if !slices.ContainsFunc(st.Details, func(d string) bool { return strings.HasPrefix(d, want) }) {
				t.Errorf("Describe details %q; want one starting %q", st.Details, want)
			}
		})
	}
}

// TestLoadImagesWithoutUp: `gatecheck cluster load-images --cluster existing` loads without Up.
func TestLoadImagesWithoutUp(t *testing.T) {
	t.Parallel()
	p := New(nodesServer(t, "kind-trishanku", recordedKindNode(t)), nil)
	fk := &fakeKind{nodes: []string{"trishanku-control-plane"}}
	p.newKindLoader = func(string) (KindLoader, error) { return fk, nil }
	if err := p.LoadImages(context.Background(), []string{"a.tar"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"nodes trishanku", "load trishanku a.tar"}, fk.calls); diff != "" {
		t.Errorf("kind calls (-want +got):\n%s", diff)
	}
}
