package impls

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/internal/command"
)

// helmForTest is the helm a run would use: on PATH, else the one gatecheck built from the module
// proxy into its cache. Building it takes ~6 minutes on 2 cores, more than all of `make test` may
// take on a fresh machine, so without either the test skips, saying how to get helm; CI builds it
// first (`bin/gatecheck helm`) and sets GATECHECK_TEST_HELM=require, which turns the skip into a
// failure.
func helmForTest(t *testing.T) string {
	t.Helper()
	_, onPath := exec.LookPath("helm")
	cached := filepath.Join(cluster.CacheDir(), "tools", "helm", images.HelmVersion, "helm")
	if _, err := os.Stat(cached); err != nil && onPath != nil {
		msg := "helm is neither on PATH nor built in " + cached + "; `bin/gatecheck helm` builds it (~6 min once)"
		if os.Getenv("GATECHECK_TEST_HELM") == "require" {
			t.Fatal(msg + " (GATECHECK_TEST_HELM=require)")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	bin, err := images.HelmCLI(ctx, cluster.CacheDir(), false, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatalf("helm CLI: %v", err)
	}
	return bin
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// helmRendered runs `helm template` and decodes what it prints.
func helmRendered(t *testing.T, helm string, args ...string) []install.Object {
	t.Helper()
	out, err := command.Output(context.Background(), append([]string{helm, "template"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := install.Decode("helm template", out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// helmLabels are the labels the chart adds to every object, as Helm charts do; the manifests
// have none of them.
var helmLabels = []string{"app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "helm.sh/chart"}

func objectKey(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GroupVersionKind(), u.GetNamespace(), u.GetName())
}

// TestReferenceChartMatchesManifests keeps impls/reference-helm/chart and
// reference-impl/config/*.yaml from drifting: the chart, rendered with the reference-helm
// profile's own release, namespace, values, sets and images (as built), must give exactly the manifests' objects,
// field for field, but for the Namespace (the release namespace, which a chart does not
// template: gatecheck creates it, or helm --create-namespace) and Helm's standard labels.
func TestReferenceChartMatchesManifests(t *testing.T) {
	t.Parallel()
	helm := helmForTest(t)
	p, err := Find("..", "reference-helm")
	if err != nil {
		t.Fatal(err)
	}
	h := p.Install.Helm
	chart := filepath.Join(p.Dir, h.Chart)
	if out, err := command.Output(context.Background(), helm, "lint", "--strict", chart); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	// The arguments the run passes that shape the objects: release, namespace, values, sets.
	args := []string{h.Release, chart, "--namespace", h.Namespace}
	for _, v := range h.Values {
		args = append(args, "--values", filepath.Join(p.Dir, v))
	}
	imageSets, err := h.ImageSets(func(name string) (string, error) {
		for _, s := range images.Default() {
			if s.Name == name {
				return s.Tags[0], nil
			}
		}
		return "", fmt.Errorf("no image %s", name)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(slices.Clone(h.Set), imageSets...) {
		args = append(args, "--set", s.Name+"="+string(s.Value))
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range helmRendered(t, helm, args...) {
		l := o.Obj.GetLabels()
		for _, k := range helmLabels {
			if l[k] == "" {
				t.Errorf("%s: label %s missing", objectKey(o.Obj), k)
			}
			delete(l, k)
		}
		if len(l) == 0 {
			unstructured.RemoveNestedField(o.Obj.Object, "metadata", "labels")
		} else {
			o.Obj.SetLabels(l)
		}
		got[objectKey(o.Obj)] = o.Obj
	}
	want := map[string]*unstructured.Unstructured{}
	files, _ := filepath.Glob("../reference-impl/config/*.yaml")
	if len(files) == 0 {
		t.Fatal("no reference-impl/config/*.yaml")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := install.Decode(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.Obj.GetKind() == "Namespace" {
				if o.Obj.GetName() != h.Namespace {
					t.Errorf("manifests' namespace %s; the profile's release namespace %s", o.Obj.GetName(), h.Namespace)
				}
				continue
			}
			want[objectKey(o.Obj)] = o.Obj
		}
	}
	keys := func(m map[string]*unstructured.Unstructured) []string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		slices.Sort(k)
		return k
	}
	if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
		t.Fatalf("objects (-manifests +chart):\n%s", diff)
	}
	for k, w := range want {
		if diff := cmp.Diff(w.Object, got[k].Object); diff != "" {
			t.Errorf("%s (-manifests +chart):\n%s", k, diff)
		}
	}
}

// TestReferenceChartValues: the release namespace and the values reach every place they must.
func TestReferenceChartValues(t *testing.T) {
	t.Parallel()
	helm := helmForTest(t)
	objs := helmRendered(t, helm, "other", "../impls/reference-helm/chart", "--namespace", "team-a",
		"--set", "gatewayClass.create=false", "--set", "proxy.serviceType=ClusterIP", "--set", "images.proxy=r.example/proxy:v2")
	var args []string
	for _, o := range objs {
		u := o.Obj
		if u.GetKind() == "GatewayClass" {
			t.Errorf("gatewayClass.create=false rendered %s", objectKey(u))
		}
		if ns := u.GetNamespace(); ns != "" && ns != "team-a" {
			t.Errorf("%s: namespace %s; want the release namespace team-a", objectKey(u), ns)
		}
		subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
		for _, s := range subjects {
			if ns := s.(map[string]any)["namespace"]; ns != "team-a" {
				t.Errorf("%s: subject namespace %v; want team-a", objectKey(u), ns)
			}
		}
		if u.GetKind() == "Deployment" {
			cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			args, _, _ = unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
		}
	}
	for _, want := range []string{"--controller-service=team-a/gatecheck-reference-controller", "--proxy-service-type=ClusterIP", "--proxy-image=r.example/proxy:v2"} {
		if !slices.Contains(args, want) {
			t.Errorf("controller args %q lack %s", args, want)
		}
	}
}
