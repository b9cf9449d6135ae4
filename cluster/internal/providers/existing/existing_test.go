package existing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// apiServer is a loopback stand-in answering the two calls the provider makes.
func apiServer(t *testing.T, ready bool) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready {
			http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, srv.URL)
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

func TestExisting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kc := apiServer(t, true)
	p := New(kc, nil)
	if err := p.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	st, err := p.Describe(ctx)
	if err != nil || !st.Up || st.KubernetesVersion != "v1.37.2" || st.Kubeconfig != kc {
		t.Errorf("Describe = %+v, %v; want up, v1.37.2, %s", st, err, kc)
	}
	if err := p.Down(ctx); err != nil {
		t.Errorf("Down: got %v; want nil (never deletes)", err)
	}
	if err := p.LoadImages(ctx, []string{"x.tar"}); !errors.Is(err, ErrNoImageLoading) {
		t.Errorf("LoadImages: got %v; want ErrNoImageLoading", err)
	}
}

func TestExistingNotReady(t *testing.T) {
	t.Parallel()
	p := New(apiServer(t, false), nil)
	if err := p.Up(context.Background()); err == nil {
		t.Errorf("Up against an unready API server: got nil; want an error")
	}
	st, _ := p.Describe(context.Background())
	if st.Up {
		t.Errorf("Describe.Up = true; want false")
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Two API servers; the kubeconfig's current context names the unready one.
	good, bad := apiServer(t, true), apiServer(t, false)
	load := func(path string) map[string]any {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	server := func(path string) string {
		return load(path)["clusters"].([]any)[0].(map[string]any)["cluster"].(map[string]any)["server"].(string)
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: bad, cluster: {server: %q}}, {name: good, cluster: {server: %q}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: bad, context: {cluster: bad, user: u}}, {name: good, context: {cluster: good, user: u}}]
current-context: bad
`, server(bad), server(good))
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := NewWithContext(kc, "good", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Up(ctx); err != nil {
		t.Fatalf("Up with --context good: %v; want the good cluster", err)
	}
	got := load(p.Kubeconfig())
	if got["current-context"] != "good" || len(got["contexts"].([]any)) != 1 || len(got["clusters"].([]any)) != 1 {
		t.Errorf("kubeconfig for the children = %v; want only context good, current", got)
	}
	if fi, err := os.Stat(p.Kubeconfig()); err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(p.Kubeconfig()) != dir {
		t.Errorf("kubeconfig %s: %v, %v; want mode 0600 in %s", p.Kubeconfig(), fi.Mode(), err, dir)
	}
	if p, err := NewWithContext(kc, "bad", dir, nil); err != nil || p.Up(ctx) == nil {
		t.Errorf("--context bad: %v; want the unready cluster refused at Up", err)
	}
	_, err = NewWithContext(kc, "prod", dir, nil)
	if err == nil || !strings.Contains(err.Error(), `--context "prod": no such context`) || !strings.Contains(err.Error(), "(available: bad, good)") {
		t.Errorf("unknown context: %v; want an error naming it and listing bad, good", err)
	}
}
