package cluster

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
)

func TestParseRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		insecure bool
		want     Registry
		err      string
	}{
		{in: "127.0.0.1:5000", want: Registry{Host: "127.0.0.1:5000", Insecure: true}},
		{in: "localhost:5000/ci/gatecheck", want: Registry{Host: "localhost:5000", Prefix: "ci/gatecheck", Insecure: true}},
		{in: "[::1]:5000", want: Registry{Host: "[::1]:5000", Insecure: true}},
		{in: "registry.example.com/team", want: Registry{Host: "registry.example.com", Prefix: "team"}},
		{in: "10.0.0.5:5000", insecure: true, want: Registry{Host: "10.0.0.5:5000", Insecure: true}},
		{in: "", err: "empty"},
		{in: "http://127.0.0.1:5000", err: "no scheme"},
		{in: "127.0.0.1:", err: "127.0.0.1:"},
		{in: "127.0.0.1:5000/Team", err: `prefix "Team"`},
		{in: "reg istry:5000", err: "is not a registry host"},
	}
	for _, tc := range tests {
		got, err := ParseRegistry(tc.in, tc.insecure)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--registry") {
				t.Errorf("ParseRegistry(%q) = %+v, %v; want an error naming --registry and containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRegistry(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestRegistryRef(t *testing.T) {
	t.Parallel()
	r := Registry{Host: "127.0.0.1:5000", Prefix: "ci", Insecure: true}
	for in, want := range map[string]string{
		"gatecheck.dev/echo-backend:dev":                "127.0.0.1:5000/ci/gatecheck.dev/echo-backend:dev",
		"registry.k8s.io/gateway-api/echo-basic:v1.5.1": "127.0.0.1:5000/ci/registry.k8s.io/gateway-api/echo-basic:v1.5.1",
		"busybox": "127.0.0.1:5000/ci/docker.io/library/busybox:latest",
	} {
		if got, err := r.Ref(in); err != nil || got != want {
			t.Errorf("Ref(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestPushToLoopbackRegistry pushes a two-tag archive to a real registry on loopback
// (go-containerregistry's pkg/registry) and reads the images back under the mapped names.
func TestPushToLoopbackRegistry(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	reg, err := ParseRegistry(host+"/gc", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := reg.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	t1, _ := name.NewTag("gatecheck.dev/echo-backend:dev")
	t2, _ := name.NewTag("registry.k8s.io/gateway-api/echo-basic:v1.5.1")
	if err := tarball.MultiRefWriteToFile(archive, map[name.Reference]v1.Image{t1: img, t2: img}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m, err := Push(ctx, reg, []string{archive}, &out)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	wantDigest, _ := img.Digest()
	for _, src := range []string{t1.String(), t2.String()} {
		dst := m[src]
		if dst != host+"/gc/"+src {
			t.Errorf("pushed %s as %q; want %s/gc/%s", src, dst, host, src)
		}
		ref, err := name.ParseReference(dst, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s back: %v", dst, err)
		}
		if d, _ := got.Digest(); d != wantDigest {
			t.Errorf("%s has digest %s; want %s", dst, d, wantDigest)
		}
	}
	if !strings.Contains(out.String(), "pushed gatecheck.dev/echo-backend:dev -> "+host+"/gc/gatecheck.dev/echo-backend:dev") {
		t.Errorf("progress output lacks the push line:\n%s", out.String())
	}
}

func TestRegistryUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there now
	reg, _ := ParseRegistry(host, false)
	err := reg.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--registry "+host+": not reachable at http://"+host+"/v2/") {
		t.Fatalf("Ping(closed) = %v; want an error naming --registry and the URL", err)
	}
	notRegistry := httptest.NewServer(nil) // answers 404 to /v2/
	t.Cleanup(notRegistry.Close)
	reg, _ = ParseRegistry(strings.TrimPrefix(notRegistry.URL, "http://"), false)
	if err := reg.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "answered 404") {
		t.Fatalf("Ping(not a registry) = %v; want an error saying it answered 404", err)
	}
}

func TestPullState(t *testing.T) {
	t.Parallel()
	pod := func(st corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{st}}}
	}
	if done, _, err := pullState(pod(corev1.ContainerStatus{ImageID: "sha256:x"})); !done || err != nil {
		t.Errorf("container with an image id: done %v, %v; want done", done, err)
	}
	if done, why, err := pullState(pod(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}})); done || err != nil || why != "ContainerCreating" {
		t.Errorf("creating: %v %q %v; want waiting", done, why, err)
	}
	_, _, err := pullState(pod(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "http: server gave HTTP response to HTTPS client"}}}))
	if err == nil || !strings.Contains(err.Error(), "ImagePullBackOff: http: server gave HTTP response to HTTPS client") {
		t.Errorf("back-off: %v; want an error quoting the kubelet", err)
	}
	if done, _, err := pullState(&corev1.Pod{}); done || err != nil {
		t.Errorf("no status yet: %v, %v; want waiting", done, err)
	}
}
