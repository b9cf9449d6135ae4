package runner

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/internal/imagemap"
)

// fakeNamespaces is an API server that knows only namespaces, and records every call.
type fakeNamespaces struct {
	mu     sync.Mutex
	exists map[string]bool
	calls  []string
}

func (f *fakeNamespaces) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	name := strings.TrimPrefix(r.URL.Path, "/api/v1/namespaces/")
	notFound := func() {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: 404})
	}
	ns := func(name string) corev1.Namespace {
		return corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	switch {
	case r.Method == http.MethodGet && f.exists[name]:
		_ = json.NewEncoder(w).Encode(ns(name))
	case r.Method == http.MethodGet:
		notFound()
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces":
		var n corev1.Namespace
		_ = json.NewDecoder(r.Body).Decode(&n)
		f.exists[n.Name] = true
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(n)
	case r.Method == http.MethodDelete && f.exists[name]:
		delete(f.exists, name)
		_ = json.NewEncoder(w).Encode(ns(name))
	default:
		notFound()
	}
}

func (f *fakeNamespaces) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "GET ") {
			out = append(out, c)
		}
	}
	return out
}

// fakeHelm writes a helm that logs its arguments, one call a line, answers `list` with list
// and exits installRC from `install`.
func fakeHelm(t *testing.T, list string, installRC int) (bin, log string) {
	return fakeHelmRC(t, list, installRC, 0)
}

// fakeHelmRC is fakeHelm whose uninstall exits uninstallRC.
func fakeHelmRC(t *testing.T, list string, installRC, uninstallRC int) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	bin, log = filepath.Join(dir, "helm"), filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\ncase \"$1\" in\n" +
		"list) printf '%s' '" + list + "' ;;\n" +
		"install) exit " + string(rune('0'+installRC)) + " ;;\n" +
		"uninstall) exit " + string(rune('0'+uninstallRC)) + " ;;\nesac\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

func helmCalls(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func helmInstaller(t *testing.T, bin string, api *fakeNamespaces, bundled bool) (*implInstaller, *[]bool) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	p := &impls.Profile{Name: "ref", Dir: dir, Install: impls.Install{Kind: impls.InstallHelm, Helm: &impls.Helm{
		Release: "gatecheck-reference", Namespace: "gatecheck-system", Chart: "chart", Bundled: bundled,
		Set: []impls.HelmSet{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}},
	}}}
	var asked []bool
	return &implInstaller{profile: p, cfg: &rest.Config{Host: srv.URL}, kubeconfig: "/k/config", out: &strings.Builder{},
		findHelm: func(_ context.Context, bundled bool) (string, error) { asked = append(asked, bundled); return bin, nil }}, &asked
}

func join(args []string) string { return strings.Join(args, " ") }

// With --registry, a set value that is an image gatecheck built installs the pushed reference;
// other values, and the profile itself, are left as they are.
func TestHelmSetsNamePushedImages(t *testing.T) {
	t.Parallel()
	bin, log := fakeHelm(t, `[]`, 0)
	api := &fakeNamespaces{exists: map[string]bool{"gatecheck-system": true}}
	ii, _ := helmInstaller(t, bin, api, false)
	h := ii.profile.Install.Helm
	h.Set = []impls.HelmSet{{Name: "images.controller", Value: "gatecheck.dev/reference-controller:dev"}, {Name: "note", Value: "gatecheck.dev/reference-controller:dev2"}}
	ii.images = imagemap.Map{"gatecheck.dev/reference-controller:dev": "127.0.0.1:5000/gatecheck.dev/reference-controller:dev"}
	if err := ii.install(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := helmCalls(t, log)[1]
	if !strings.Contains(got, "--set images.controller=127.0.0.1:5000/gatecheck.dev/reference-controller:dev --set note=gatecheck.dev/reference-controller:dev2 ") {
		t.Errorf("install %q: want the pushed controller image and the other value as written", got)
	}
	if h.Set[0].Value != "gatecheck.dev/reference-controller:dev" {
		t.Errorf("the profile's set was changed: %v", h.Set)
	}
}

// A release that existed before the run is neither installed over nor removed: only `helm list`
// runs, the namespace is not touched, and teardown does nothing.
func TestHelmRefusesAnExistingRelease(t *testing.T) {
	t.Parallel()
	bin, log := fakeHelm(t, `[{"name":"gatecheck-reference","namespace":"gatecheck-system","revision":"1","status":"failed","chart":"gatecheck-reference-0.1.0"}]`, 0)
	api := &fakeNamespaces{exists: map[string]bool{}}
	ii, _ := helmInstaller(t, bin, api, false)
	err := ii.install(context.Background())
	if err == nil || !strings.Contains(err.Error(), "install.helm.release: release gatecheck-reference already exists in namespace gatecheck-system (status failed, chart gatecheck-reference-0.1.0)") {
		t.Fatalf("install error %v; want the existing release named", err)
	}
	if err := ii.uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := ii.profile.Install.Helm
	if diff := cmp.Diff([]string{join(h.ListArgs(ii.helmTarget()))}, helmCalls(t, log)); diff != "" {
		t.Errorf("helm calls (-want +got):\n%s", diff)
	}
	if w := api.writes(); len(w) > 0 {
		t.Errorf("API writes %q; want none", w)
	}
}

// A namespace that existed before the run stays; the release gatecheck installed goes.
func TestHelmKeepsANamespaceItDidNotCreate(t *testing.T) {
	t.Parallel()
	bin, log := fakeHelm(t, `[]`, 0)
	api := &fakeNamespaces{exists: map[string]bool{"gatecheck-system": true}}
	ii, asked := helmInstaller(t, bin, api, true)
	if err := ii.install(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ii.uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, tg := ii.profile.Install.Helm, ii.helmTarget()
	want := []string{join(h.ListArgs(tg)), join(h.InstallArgs(ii.profile.Dir, tg)), join(h.UninstallArgs(tg))}
	if diff := cmp.Diff(want, helmCalls(t, log)); diff != "" {
		t.Errorf("helm calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(want[1], "--set b=2 --set a=1") || !strings.Contains(want[1], "--kubeconfig /k/config") {
		t.Errorf("install %q: want the sets in order and the run's kubeconfig", want[1])
	}
	if w := api.writes(); len(w) > 0 {
		t.Errorf("API writes %q; want none (the namespace was there before)", w)
	}
	if !slices.Equal(*asked, []bool{true}) {
		t.Errorf("helm finder asked with bundled=%v; want [true]", *asked)
	}
	// A second teardown removes nothing more.
	if err := ii.uninstall(context.Background()); err != nil || len(helmCalls(t, log)) != 3 {
		t.Errorf("second uninstall: %v, calls %q", err, helmCalls(t, log))
	}
}

// A namespace gatecheck created is removed after the release, also when the install failed
// half-way (the failed release is gatecheck's, so it is uninstalled too).
func TestHelmRemovesWhatAFailedInstallLeft(t *testing.T) {
	t.Parallel()
	bin, log := fakeHelm(t, `[]`, 1)
	api := &fakeNamespaces{exists: map[string]bool{}}
	ii, _ := helmInstaller(t, bin, api, false)
	if err := ii.install(context.Background()); err == nil || !strings.Contains(err.Error(), "install.helm:") {
		t.Fatalf("install error %v; want the failed helm install", err)
	}
	if err := ii.uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := helmCalls(t, log)
	if len(calls) != 3 || !strings.HasPrefix(calls[1], "install ") || calls[2] != join(ii.profile.Install.Helm.UninstallArgs(ii.helmTarget())) {
		t.Errorf("helm calls %q; want list, install, uninstall", calls)
	}
	if diff := cmp.Diff([]string{"POST /api/v1/namespaces", "DELETE /api/v1/namespaces/gatecheck-system"}, api.writes()); diff != "" {
		t.Errorf("API writes (-want +got):\n%s", diff)
	}
}

func TestIndentWriterWritesWholeLines(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	w := &indentWriter{w: &out}
	for _, chunk := range []string{"NAME: gate", "check\nSTATUS: de", "ployed\n", "TEST SUITE: None"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	w.flush()
	if want := "  NAME: gatecheck\n  STATUS: deployed\n  TEST SUITE: None\n"; out.String() != want {
		t.Errorf("got %q; want %q", out.String(), want)
	}
}

// HELM_KUBECONTEXT and friends in gatecheck's environment would send helm to another context
// than the run's client: every helm command gets them blank.
func TestHelmIgnoresHelmKubeEnvironment(t *testing.T) {
	t.Setenv("HELM_KUBECONTEXT", "someone-elses")
	t.Setenv("HELM_KUBEAPISERVER", "https://192.0.2.1:6443")
	dir := t.TempDir()
	bin, log := filepath.Join(dir, "helm"), filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$1 context=[$HELM_KUBECONTEXT] server=[$HELM_KUBEAPISERVER]\" >> " + log + "\n[ \"$1\" = list ] && echo '[]'\nexit 0\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ii, _ := helmInstaller(t, bin, &fakeNamespaces{exists: map[string]bool{"gatecheck-system": true}}, false)
	if err := ii.install(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ii.uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"list context=[] server=[]", "install context=[] server=[]", "uninstall context=[] server=[]"}
	if diff := cmp.Diff(want, helmCalls(t, log)); diff != "" {
		t.Errorf("helm saw (-want +got):\n%s", diff)
	}
}

// When helm uninstall fails, the namespace gatecheck created stays: helm's record of the release
// lives there, and deleting it would orphan the release's cluster-scoped objects.
func TestHelmKeepsTheNamespaceWhenUninstallFails(t *testing.T) {
	t.Parallel()
	bin, _ := fakeHelmRC(t, `[]`, 0, 1)
	api := &fakeNamespaces{exists: map[string]bool{}}
	ii, _ := helmInstaller(t, bin, api, false)
	if err := ii.install(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := ii.uninstall(context.Background())
	if err == nil || !strings.Contains(err.Error(), "namespace gatecheck-system kept, so that `helm uninstall gatecheck-reference --namespace gatecheck-system` can still remove the release") {
		t.Fatalf("uninstall error %v; want the failed uninstall and the kept namespace named", err)
	}
	if diff := cmp.Diff([]string{"POST /api/v1/namespaces"}, api.writes()); diff != "" {
		t.Errorf("API writes (-want +got):\n%s", diff)
	}
}

// fakeRefs is the image builder's names to references.
type fakeRefs map[string]string

func (f fakeRefs) Reference(name string) (string, error) {
	if r, ok := f[name]; ok {
		return r, nil
	}
	return "", errors.New("unknown image " + name)
}

// install.helm.images sets the chart's image values to what the nodes get: the built reference,
// or with --registry the pushed one, after the profile's own set entries; an image whose
// reference is unknown stops the install before anything is touched.
func TestHelmImagesSetBuiltReferences(t *testing.T) {
	t.Parallel()
	refs := fakeRefs{"controller": "gatecheck.dev/reference-controller:dev", "proxy": "gatecheck.dev/reference-proxy:dev"}
	for _, tc := range []struct {
		name   string
		pushed imagemap.Map
		want   string
	}{
		{"loaded", nil, "--set b=2 --set a=1 --set images.controller=gatecheck.dev/reference-controller:dev --set proxy.repository=gatecheck.dev/reference-proxy --set proxy.tag=dev "},
		{"pushed", imagemap.Map{"gatecheck.dev/reference-controller:dev": "127.0.0.1:5000/gatecheck.dev/reference-controller:dev", "gatecheck.dev/reference-proxy:dev": "127.0.0.1:5000/gatecheck.dev/reference-proxy:dev"},
			"--set b=2 --set a=1 --set images.controller=127.0.0.1:5000/gatecheck.dev/reference-controller:dev --set proxy.repository=127.0.0.1:5000/gatecheck.dev/reference-proxy --set proxy.tag=dev "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin, log := fakeHelm(t, `[]`, 0)
			ii, _ := helmInstaller(t, bin, &fakeNamespaces{exists: map[string]bool{"gatecheck-system": true}}, false)
			ii.profile.Install.Helm.Images = []impls.HelmImage{{Image: "controller", Value: "images.controller"}, {Image: "proxy", Repository: "proxy.repository", Tag: "proxy.tag"}}
			ii.images, ii.imageRefs = tc.pushed, refs
			if err := ii.install(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := helmCalls(t, log)[1]; !strings.Contains(got, tc.want) {
				t.Errorf("install %q; want %q", got, tc.want)
			}
		})
	}

	bin, log := fakeHelm(t, `[]`, 0)
	api := &fakeNamespaces{exists: map[string]bool{}}
	ii, _ := helmInstaller(t, bin, api, false)
	ii.profile.Install.Helm.Images = []impls.HelmImage{{Image: "traefik", Value: "image"}}
	ii.imageRefs = refs
	err := ii.install(context.Background())
	if err == nil || !strings.Contains(err.Error(), "install.helm.images[0].image traefik: unknown image traefik") {
		t.Errorf("install: %v; want the unknown image named", err)
	}
	if calls, w := helmCalls(t, log), api.writes(); len(calls) > 0 || len(w) > 0 {
		t.Errorf("helm calls %q, API writes %q; want none", calls, w)
	}
}
