//go:build e2e

package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/cluster/images"
)

// TestRegistryPullEndToEnd is the --registry path on the host cluster: a registry on loopback
// (go-containerregistry's pkg/registry), trusted by the cluster's containerd through its
// config_path; echo-backend pushed there with cluster.Push; every node pulls it (cluster.Prepull,
// imagePullPolicy Always), which the registry sees as containerd's manifest requests, and a pod
// that may not pull (imagePullPolicy Never) then runs from the pushed name. An image the registry lacks, and a
// registry that went away, fail the pre-pull naming the image and the kubelet's reason. Run as
// root (~2 min with the host binaries cached):
//
//	go test -tags e2e ./cluster/ -run TestRegistryPullEndToEnd -v -timeout 15m
func TestRegistryPullEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the host cluster needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	w := testWriter{t}
	log := slog.New(slog.NewTextHandler(w, nil))
	p, err := cluster.New(cluster.Host, cluster.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Down(context.Background()); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	t.Logf("host cluster up in %s", time.Since(start).Round(10*time.Millisecond))

	// The registry, counting the manifest requests containerd makes.
	var pulls atomic.Int64
	reg := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			strings.Contains(r.UserAgent(), "containerd") {
			pulls.Add(1)
		}
		reg.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	hostsToml, remove, err := cluster.TrustRegistryOnHost(stateDir, hostPort)
	if err != nil {
		t.Fatalf("trust the registry: %v", err)
	}
	defer remove()
	t.Logf("registry on %s; containerd's hosts.toml: %s", hostPort, hostsToml)

	r, err := cluster.ParseRegistry(hostPort+"/e2e", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	spec := images.Default()[0]
	spec.Required = true
	root, err := cluster.ModuleRoot("")
	if err != nil {
		t.Fatal(err)
	}
	built, err := images.Builder{ModuleRoot: root, OutDir: filepath.Join(cluster.CacheDir(), "images"), Logger: log}.Build(ctx, []images.Spec{spec})
	if err != nil {
		t.Fatalf("build echo-backend: %v", err)
	}
	m, err := cluster.Push(ctx, r, []string{built[0].Archive}, w)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	pushed := m[images.EchoBackendImage]
	if want := hostPort + "/e2e/" + images.EchoBackendImage; pushed != want {
		t.Fatalf("pushed %s as %q; want %s", images.EchoBackendImage, pushed, want)
	}
	// Registered after Down's cleanup: runs before it.
	t.Cleanup(func() { forgetPulled(t, hostPort+"/") })

	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	pullStart := time.Now()
	if err := cluster.Prepull(ctx, cfg, []string{pushed}, 3*time.Minute, w); err != nil {
		t.Fatalf("pre-pull %s: %v", pushed, err)
	}
	t.Logf("pre-pulled %s in %s; containerd asked the registry for manifests %d times", pushed, time.Since(pullStart).Round(10*time.Millisecond), pulls.Load())
	if pulls.Load() == 0 {
		t.Fatalf("the registry saw no manifest request from containerd: the image was not pulled from it")
	}
	// The pulled name is in the node's store: a pod that may not pull (imagePullPolicy Never)
	// starts from it. (The node's status.images is no proof: the kubelet lists 5 names per
	// image, repo digests first, and the store keeps tags of earlier runs across down and up.)
	cs := client(t, p.Kubeconfig())
	ns := namespace(ctx, t, cs)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "from-store", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: pushed, ImagePullPolicy: corev1.PullNever}},
			TerminationGracePeriodSeconds: new(int64)},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "pod with imagePullPolicy Never on "+pushed+" to run", time.Minute, func() error {
		got, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, st := range got.Status.ContainerStatuses {
			if st.State.Running != nil {
				return nil
			}
			if w := st.State.Waiting; w != nil && w.Reason == "ErrImageNeverPull" {
				t.Fatalf("%s is not in the node's store: %s", pushed, w.Message)
			}
		}
		return errors.New("not running yet")
	})
	_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})

	// Controls: what the registry lacks, and a registry that went away, fail naming the image.
	missing := hostPort + "/e2e/gatecheck.dev/missing:v0"
	err = cluster.Prepull(ctx, cfg, []string{missing}, 2*time.Minute, w)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "the kubelet cannot pull it") {
		t.Errorf("pre-pull of an image the registry lacks: %v; want an error naming %s and the kubelet's reason", err, missing)
	}
	srv.Close()
	err = cluster.Prepull(ctx, cfg, []string{pushed}, 2*time.Minute, w)
	if err == nil || !strings.Contains(err.Error(), pushed) {
		t.Errorf("pre-pull (imagePullPolicy Always) from a registry that went away: %v; want an error naming %s", err, pushed)
	}
	// containerd used the hosts.toml: it asked over plain HTTP at once. Without the file (or with
	// a TLS setting in it) it tries https:// first for a loopback registry.
	if err != nil && !strings.Contains(err.Error(), `"http://`+hostPort+`/v2/`) {
		t.Errorf("containerd did not speak plain HTTP to %s from the first request (hosts.toml not used?): %v", hostPort, err)
	}
	t.Logf("controls: %v", err)
}

// forgetPulled removes from the host cluster's containerd every image name that starts with
// prefix (the test registry's, which is gone after the test). The names pile up across runs on
// the image gatecheck loads as gatecheck.dev/echo-backend:dev, and a kubelet reports at most
// five names per image: after three runs the node's status.images no longer listed
// gatecheck.dev/echo-backend:dev, and the suites' image check on that cluster failed.
func forgetPulled(t *testing.T, prefix string) {
	cache := os.Getenv("GATECHECK_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Errorf("forget pulled images: %v", err)
			return
		}
		cache = filepath.Join(home, ".cache", "gatecheck")
	}
	ctrs, _ := filepath.Glob(filepath.Join(cache, "containerd", "*", "bin", "ctr"))
	if len(ctrs) == 0 {
		t.Errorf("forget pulled images: no ctr under %s", filepath.Join(cache, "containerd"))
		return
	}
	ctr := ctrs[len(ctrs)-1]
	base := []string{"-a", "/var/lib/gatecheck/host/containerd/containerd.sock", "-n", "k8s.io", "images"}
	out, err := exec.Command(ctr, append(base, "ls", "-q")...).Output()
	if err != nil {
		t.Errorf("forget pulled images: %s images ls: %v", ctr, err)
		return
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	if out, err := exec.Command(ctr, append(append(base, "rm"), names...)...).CombinedOutput(); err != nil {
		t.Errorf("forget pulled images %v: %v: %s", names, err, out)
	}
}
