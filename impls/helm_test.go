package impls

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// helmProfile is a valid helm profile; each case edits its install.helm block.
const helmProfile = `apiVersion: gatecheck.dev/v1alpha1
kind: ImplementationProfile
name: example
gatewayClass: {name: example, controllerName: example.com/gateway}
install:
  kind: helm
  helm:
HELM
conformance:
  report: {organization: o, project: p, url: u, version: v, contact: [c]}
`

// loadHelm writes a profile whose install.helm is block (indented here) next to a local chart
// (chart/Chart.yaml, chart.tgz, values/a.yaml, values/b.yaml) and loads it.
func loadHelm(t *testing.T, block string) (*Profile, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n", "chart.tgz": "x", "notachart/x": "",
		"values/a.yaml": "a: 1\n", "values/b.yaml": "b: 2\n", "values.txt": "",
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var ind []string
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		ind = append(ind, "    "+l)
	}
	path := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(helmProfile, "HELM", strings.Join(ind, "\n"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestHelmFieldErrorsNameTheField(t *testing.T) {
	t.Parallel()
	base := "release: r\nnamespace: ns\n"
	tests := []struct {
		name, block string
		want        []string // substrings of the error; none: valid
	}{
		{"local dir", base + "chart: chart", nil},
		{"local archive", base + "chart: chart.tgz", nil},
		{"repo", base + "chart: gateway-helm\nrepo: https://charts.example.com/stable\nversion: 1.2.3", nil},
		{"repo constraint", base + "chart: gateway-helm\nrepo: http://127.0.0.1:8879\nversion: '>=1.2, <2'", nil},
		{"oci", base + "chart: oci://docker.io/envoyproxy/gateway-helm\nversion: v1.5.0", nil},
		{"everything", base + "chart: chart\nvalues: [values/a.yaml, values/b.yaml]\nset:\n- {name: a.b, value: x}\n- {name: 'list[0].c', value: 3}\n- {name: d, value: true}\n- {name: e, value: '{x,y}'}\n- {name: f, value: 'a\\,b'}\nskipCRDs: true\ntimeout: 90s\nwait: false\nbundled: true", nil},
		{"no release", "namespace: ns\nchart: chart", []string{"install.helm.release: required"}},
		{"bad release", "release: My_Release\nnamespace: ns\nchart: chart", []string{`install.helm.release: "My_Release"`}},
		{"long release", "release: " + strings.Repeat("r", 54) + "\nnamespace: ns\nchart: chart", []string{"install.helm.release:", "at most 53"}},
		{"no namespace", "release: r\nchart: chart", []string{"install.helm.namespace: required"}},
		{"bad namespace", "release: r\nnamespace: Gatecheck.System\nchart: chart", []string{`install.helm.namespace: "Gatecheck.System"`}},
		{"no chart", base, []string{"install.helm.chart: required"}},
		{"missing local chart", base + "chart: charts/nope", []string{"install.helm.chart: local chart", "charts/nope not found", "install.helm.repo"}},
		{"dir without Chart.yaml", base + "chart: notachart", []string{"install.helm.chart:", "without Chart.yaml"}},
		{"file not an archive", base + "chart: values.txt", []string{"install.helm.chart:", "not a chart archive"}},
		{"http chart", base + "chart: https://example.com/c.tgz", []string{"install.helm.chart:", "only oci://"}},
		{"local with version", base + "chart: chart\nversion: 1.0.0", []string{"install.helm.version: applies to repository and OCI charts"}},
		{"repo not a URL", base + "chart: c\nrepo: charts.example.com", []string{`install.helm.repo: "charts.example.com" is not an http(s)`}},
		{"repo chart with a path", base + "chart: stable/c\nrepo: https://charts.example.com", []string{`install.helm.chart: "stable/c": with install.helm.repo`}},
		{"oci with repo", base + "chart: oci://r.example/c\nrepo: https://charts.example.com", []string{"install.helm.repo: not with an oci:// chart"}},
		{"oci without path", base + "chart: oci://r.example", []string{"install.helm.chart:", "not an OCI chart reference"}},
		{"oci plain HTTP", base + "chart: oci://registry.ci:5000/charts/c\nplainHTTP: true", nil},
		{"plainHTTP with a local chart", base + "chart: chart\nplainHTTP: true", []string{"install.helm.plainHTTP: applies to oci:// charts only"}},
		{"plainHTTP with a repository", base + "chart: c\nrepo: http://127.0.0.1:8879\nplainHTTP: false", []string{"install.helm.plainHTTP: applies to oci:// charts only"}},
		{"oci with tag", base + "chart: oci://r.example/charts/c:1.0", []string{"install.helm.chart:", "install.helm.version, not in the reference"}},
		{"bad version", base + "chart: c\nrepo: https://charts.example.com\nversion: one", []string{`install.helm.version: "one"`}},
		{"missing values", base + "chart: chart\nvalues: [values/a.yaml, values/nope.yaml]", []string{"install.helm.values[1]:", "nope.yaml not found"}},
		{"values dir", base + "chart: chart\nvalues: [values]", []string{"install.helm.values[0]:", "is a directory"}},
		{"values comma", base + "chart: chart\nvalues: ['values/a.yaml,values/b.yaml']", []string{"install.helm.values[0]:", "splits --values at commas"}},
		{"set no name", base + "chart: chart\nset: [{value: x}]", []string{"install.helm.set[0].name: required"}},
		{"set name with =", base + "chart: chart\nset: [{name: a, value: x}, {name: 'b=c', value: x}]", []string{"install.helm.set[1].name:", "'='"}},
		{"set name with comma", base + "chart: chart\nset: [{name: 'a,b', value: x}]", []string{"install.helm.set[0].name:", "two assignments"}},
		{"set name empty element", base + "chart: chart\nset: [{name: a..b, value: x}]", []string{"install.helm.set[0].name:", "empty path element"}},
		{"set value comma", base + "chart: chart\nset: [{name: a, value: 'x,y=z'}]", []string{"install.helm.set[0].value:", `write \, for a comma`}},
		{"set value bad list", base + "chart: chart\nset: [{name: a, value: '{x,y'}]", []string{"install.helm.set[0].value:", "a list is {a,b}"}},
		{"set value structure", base + "chart: chart\nset: [{name: a, value: {b: c}}]", []string{"install.helm.set: value", "want a string, number or boolean"}},
		{"set as a map", base + "chart: chart\nset: {a: b}", []string{"set"}},
		{"negative timeout", base + "chart: chart\ntimeout: -1m", []string{"install.helm.timeout: -1m0s must be positive"}},
		{"bad timeout", base + "chart: chart\ntimeout: soon", []string{`duration "soon"`}},
		{"unknown field", base + "chart: chart\nskipCRD: true", []string{`unknown field "skipCRD"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadHelm(t, tc.block)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid; got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error with %q; got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHelmCommandLines(t *testing.T) {
	t.Parallel()
	p, err := loadHelm(t, `release: gatecheck-reference
namespace: gatecheck-system
chart: chart
values: [values/b.yaml, values/a.yaml]
set:
- {name: z.last, value: "1"}
- {name: a.first, value: 2}
- {name: m, value: "x\\,y"}
- {name: a.first, value: 3}
skipCRDs: true
timeout: 90s`)
	if err != nil {
		t.Fatal(err)
	}
	h, dir := p.Install.Helm, p.Dir
	target := HelmTarget{Kubeconfig: "/k/admin.kubeconfig"}
	// Values files in the order written, then every set in the order written (a map would
	// have sorted or shuffled them), the later a.first winning; local paths absolute.
	want := []string{"install", "gatecheck-reference", filepath.Join(dir, "chart"), "--namespace", "gatecheck-system",
		"--kubeconfig", "/k/admin.kubeconfig",
		"--values", filepath.Join(dir, "values/b.yaml"), "--values", filepath.Join(dir, "values/a.yaml"),
		"--set", "z.last=1", "--set", "a.first=2", "--set", `m=x\,y`, "--set", "a.first=3",
		"--skip-crds", "--wait", "--timeout", "1m30s"}
	if diff := cmp.Diff(want, h.InstallArgs(dir, target)); diff != "" {
		t.Errorf("install args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"uninstall", "gatecheck-reference", "--namespace", "gatecheck-system", "--kubeconfig", "/k/admin.kubeconfig", "--wait", "--timeout", "1m30s"},
		h.UninstallArgs(target)); diff != "" {
		t.Errorf("uninstall args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"list", "--namespace", "gatecheck-system", "--kubeconfig", "/k/admin.kubeconfig", "--filter", `^gatecheck-reference$`,
		"--deployed", "--failed", "--pending", "--superseded", "--uninstalled", "--uninstalling", "--output", "json"},
		h.ListArgs(target)); diff != "" {
		t.Errorf("list args (-want +got):\n%s", diff)
	}

	// A repository chart with a version, a context, no wait, default timeout.
	q, err := loadHelm(t, "release: eg.v1\nnamespace: envoy-gateway-system\nchart: gateway-helm\nrepo: https://charts.example.com\nversion: 1.5.0\nwait: false")
	if err != nil {
		t.Fatal(err)
	}
	qt := HelmTarget{Kubeconfig: "/k", Context: "kind-a"}
	if diff := cmp.Diff([]string{"install", "eg.v1", "gateway-helm", "--namespace", "envoy-gateway-system", "--kubeconfig", "/k", "--kube-context", "kind-a",
		"--repo", "https://charts.example.com", "--version", "1.5.0", "--timeout", "5m0s"}, q.Install.Helm.InstallArgs(q.Dir, qt)); diff != "" {
		t.Errorf("repo install args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"uninstall", "eg.v1", "--namespace", "envoy-gateway-system", "--kubeconfig", "/k", "--kube-context", "kind-a", "--timeout", "5m0s"},
		q.Install.Helm.UninstallArgs(qt)); diff != "" {
		t.Errorf("repo uninstall args (-want +got):\n%s", diff)
	}
	// The filter is a regular expression: the dot of a release name matches only a dot.
	if got := q.Install.Helm.ListArgs(qt); !strings.Contains(strings.Join(got, " "), `--filter ^eg\.v1$`) {
		t.Errorf("list args %q: want the filter ^eg\\.v1$", got)
	}

	// An OCI chart is passed as it is.
	o, err := loadHelm(t, "release: r\nnamespace: n\nchart: oci://registry.example/charts/c\nversion: ^1.2")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Install.Helm.InstallArgs(o.Dir, HelmTarget{}); !cmp.Equal(got[:3], []string{"install", "r", "oci://registry.example/charts/c"}) || !strings.Contains(strings.Join(got, " "), "--version ^1.2") {
		t.Errorf("oci install args %q", got)
	}
}

// TestHelmChartArgs: the chart's own arguments, which install and every other helm command that
// fetches the chart share; plain HTTP for OCI registries on loopback unless the profile says no,
// and elsewhere only when it says so (helm speaks HTTPS to every registry unless told).
func TestHelmChartArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		block string
		want  []string // "DIR" is the profile's directory
	}{
		{"chart: chart", []string{"DIR/chart"}},
		{"chart: c\nrepo: http://127.0.0.1:8879/charts\nversion: ^0.1", []string{"c", "--repo", "http://127.0.0.1:8879/charts", "--version", "^0.1"}},
		{"chart: oci://127.0.0.1:5000/charts/c\nversion: 0.1.0", []string{"oci://127.0.0.1:5000/charts/c", "--version", "0.1.0", "--plain-http"}},
		{"chart: oci://localhost:5000/charts/c", []string{"oci://localhost:5000/charts/c", "--plain-http"}},
		{"chart: oci://[::1]:5000/charts/c", []string{"oci://[::1]:5000/charts/c", "--plain-http"}},
		{"chart: oci://127.0.0.1:5000/charts/c\nplainHTTP: false", []string{"oci://127.0.0.1:5000/charts/c"}},
		{"chart: oci://registry.example/charts/c", []string{"oci://registry.example/charts/c"}},
		{"chart: oci://registry.ci:5000/charts/c\nplainHTTP: true", []string{"oci://registry.ci:5000/charts/c", "--plain-http"}},
	} {
		p, err := loadHelm(t, "release: r\nnamespace: n\n"+tc.block)
		if err != nil {
			t.Fatalf("%s: %v", tc.block, err)
		}
		var want []string
		for _, w := range tc.want {
			want = append(want, strings.Replace(w, "DIR", p.Dir, 1))
		}
		if diff := cmp.Diff(want, p.Install.Helm.ChartArgs(p.Dir)); diff != "" {
			t.Errorf("%s: chart args (-want +got):\n%s", tc.block, diff)
		}
		install := p.Install.Helm.InstallArgs(p.Dir, HelmTarget{Kubeconfig: "/k"})
		if install[2] != want[0] || !slices.Contains(install, "--plain-http") == slices.Contains(want, "--plain-http") {
			t.Errorf("%s: install args %q; want the chart %s and the same --plain-http", tc.block, install, want[0])
		}
	}
}

func TestHelmValueScalars(t *testing.T) {
	t.Parallel()
	p, err := loadHelm(t, "release: r\nnamespace: n\nchart: chart\nset:\n- {name: s, value: text}\n- {name: i, value: 3}\n- {name: f, value: 2.5}\n- {name: b, value: false}\n- {name: q, value: \"007\"}")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Install.Helm.Set {
		got = append(got, s.Name+"="+string(s.Value))
	}
	if diff := cmp.Diff([]string{"s=text", "i=3", "f=2.5", "b=false", "q=007"}, got); diff != "" {
		t.Errorf("set (-want +got):\n%s", diff)
	}
}

func TestReferenceHelmProfileLoads(t *testing.T) {
	t.Parallel()
	p, err := Find("..", "reference-helm")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Find("..", "reference")
	if err != nil {
		t.Fatal(err)
	}
	h := p.Install.Helm
	if p.Install.Kind != InstallHelm || h == nil || h.Source() != ChartLocal || !h.SkipCRDs {
		t.Fatalf("install = %+v; want a local chart with skipCRDs", p.Install)
	}
	// Same class, readiness, images and claims as the manifests-installed reference.
	if !cmp.Equal(p.GatewayClass, ref.GatewayClass) || !cmp.Equal(p.Readiness, ref.Readiness) || !cmp.Equal(p.Images, ref.Images) || !cmp.Equal(p.Conformance.Profiles, ref.Conformance.Profiles) {
		t.Errorf("reference-helm differs from reference outside install:\n%+v\n%+v", p, ref)
	}
	if h.Namespace != p.Readiness.Deployments[0].Namespace {
		t.Errorf("release namespace %s, readiness waits in %s", h.Namespace, p.Readiness.Deployments[0].Namespace)
	}
}

// A block of another install kind is refused, naming it.
func TestInstallBlocksOfAnotherKind(t *testing.T) {
	t.Parallel()
	for install, want := range map[string]string{
		`{kind: manifests, manifests: ["*.yaml"], helm: {release: r, namespace: n, chart: c}}`: "install.helm: only kind helm reads it, and install.kind is manifests",
		`{kind: helm, manifests: ["*.yaml"], helm: {release: r, namespace: n, chart: .}}`:      "install.manifests: only kind manifests reads it, and install.kind is helm",
		`{kind: script, script: {install: [x]}, helm: {release: r, namespace: n, chart: c}}`:   "install.helm: only kind helm reads it, and install.kind is script",
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "profile.yaml")
		body := strings.Replace(helmProfile, "install:\n  kind: helm\n  helm:\nHELM\n", "install: "+install+"\n", 1)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("install %s: error %v; want %q", install, err, want)
		}
	}
}

// TestHelmImages: install.helm.images names images.build images and the chart values that carry
// them; each mistake is refused naming the field.
func TestHelmImages(t *testing.T) {
	t.Parallel()
	base := "release: r\nnamespace: n\nchart: chart\n"
	for _, tc := range []struct {
		name, block string
		want        []string // substrings of the error; none: valid
	}{
		{"whole reference", "images:\n- {image: controller, value: images.controller}\n- {image: proxy, value: 'proxies[0].image'}", nil},
		{"repository and tag", "images:\n- {image: controller, repository: image.repository, tag: image.tag}", nil},
		{"not built", "images:\n- {image: traefik, value: image}", []string{`install.helm.images[0].image: "traefik" is not in images.build ["controller" "proxy"]`}},
		{"no image", "images:\n- {value: image}", []string{"install.helm.images[0].image: required"}},
		{"no values", "images:\n- {image: controller}", []string{"install.helm.images[0]: value (the whole reference) or repository and tag"}},
		{"both", "images:\n- {image: controller, value: a, tag: b}", []string{"install.helm.images[0]: value, or repository and tag, not both"}},
		{"repository alone", "images:\n- {image: controller, repository: image.repository}", []string{"install.helm.images[0]: repository and tag go together"}},
		{"bad name", "images:\n- {image: controller, value: 'a,b'}", []string{"install.helm.images[0].value:", "two assignments"}},
		{"also in set", "set: [{name: images.controller, value: x}]\nimages:\n- {image: controller, value: images.controller}", []string{"install.helm.images[0].value: images.controller is also set by install.helm.set[0]"}},
		{"twice", "images:\n- {image: controller, value: img}\n- {image: proxy, repository: img, tag: t}", []string{"install.helm.images[1].repository: img is also set by install.helm.images[0].value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadHelmBuild(t, base+tc.block, "images: {build: [controller, proxy]}")
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid; got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error with %q; got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// loadHelmBuild is loadHelm with more top-level profile fields (images: ...).
func loadHelmBuild(t *testing.T, block, extra string) (*Profile, error) {
	t.Helper()
	p, err := loadHelm(t, "release: r\nnamespace: n\nchart: chart")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(p.Dir, "profile.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ind []string
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		ind = append(ind, "    "+l)
	}
	body := strings.Replace(string(data), "    release: r\n    namespace: n\n    chart: chart", strings.Join(ind, "\n"), 1) + extra + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestHelmImageSets(t *testing.T) {
	t.Parallel()
	h := &Helm{Images: []HelmImage{
		{Image: "controller", Value: "images.controller"},
		{Image: "proxy", Repository: "proxy.image.repository", Tag: "proxy.image.tag"},
	}}
	refs := map[string]string{"controller": "127.0.0.1:5000/gatecheck.dev/reference-controller:dev", "proxy": "127.0.0.1:5000/gatecheck.dev/reference-proxy:dev"}
	got, err := h.ImageSets(func(n string) (string, error) { return refs[n], nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []HelmSet{
		{Name: "images.controller", Value: "127.0.0.1:5000/gatecheck.dev/reference-controller:dev"},
		{Name: "proxy.image.repository", Value: "127.0.0.1:5000/gatecheck.dev/reference-proxy"},
		{Name: "proxy.image.tag", Value: "dev"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image sets (-want +got):\n%s", diff)
	}
	// A port is not a tag; a digest leaves no tag to set.
	for _, ref := range []string{"127.0.0.1:5000/proxy", "r.example/proxy@sha256:" + strings.Repeat("a", 64)} {
		refs["proxy"] = ref
		if _, err := h.ImageSets(func(n string) (string, error) { return refs[n], nil }); err == nil || !strings.Contains(err.Error(), "install.helm.images[1]: image proxy is "+ref+", which has no tag to set proxy.image.tag from") {
			t.Errorf("proxy %s: error %v; want no tag named", ref, err)
		}
	}
}
