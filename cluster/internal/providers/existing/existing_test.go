package existing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
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
