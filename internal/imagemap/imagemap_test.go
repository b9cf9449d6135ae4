package imagemap

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var m = Map{
	"gatecheck.dev/echo-backend:dev":                "127.0.0.1:5000/gatecheck.dev/echo-backend:dev",
	"gatecheck.dev/reference-proxy:dev":             "127.0.0.1:5000/gatecheck.dev/reference-proxy:dev",
	"registry.k8s.io/gateway-api/echo-basic:v1.5.1": "127.0.0.1:5000/registry.k8s.io/gateway-api/echo-basic:v1.5.1",
}

func TestReplace(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"gatecheck.dev/echo-backend:dev", "127.0.0.1:5000/gatecheck.dev/echo-backend:dev"},
		{"  image: gatecheck.dev/echo-backend:dev\n", "  image: 127.0.0.1:5000/gatecheck.dev/echo-backend:dev\n"},
		{`image: "gatecheck.dev/echo-backend:dev"`, `image: "127.0.0.1:5000/gatecheck.dev/echo-backend:dev"`},
		{"--proxy-image=gatecheck.dev/reference-proxy:dev", "--proxy-image=127.0.0.1:5000/gatecheck.dev/reference-proxy:dev"},
		// Not whole references: left alone.
		{"gatecheck.dev/echo-backend:dev2", "gatecheck.dev/echo-backend:dev2"},
		{"x/gatecheck.dev/echo-backend:dev", "x/gatecheck.dev/echo-backend:dev"},
		{"registry.k8s.io/gateway-api/echo-basic:v1.5.1-rc", "registry.k8s.io/gateway-api/echo-basic:v1.5.1-rc"},
		// Already rewritten: the pushed name does not start a reference of m.
		{"127.0.0.1:5000/gatecheck.dev/echo-backend:dev", "127.0.0.1:5000/gatecheck.dev/echo-backend:dev"},
	}
	for _, tc := range tests {
		if got := m.Replace(tc.in); got != tc.want {
			t.Errorf("Replace(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	got, err := Parse(m.String())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("Parse(String()) (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"a", "a=", "=b", "a=b c"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), Env) {
			t.Errorf("Parse(%q) = %v; want an error naming %s", bad, err, Env)
		}
	}
}

func TestReplaceAll(t *testing.T) {
	t.Parallel()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(`
spec:
  template:
    spec:
      containers:
      - name: c
        image: gatecheck.dev/echo-backend:dev
        args: [--proxy-image=gatecheck.dev/reference-proxy:dev, --other=1]
      initContainers:
      - {name: i, image: busybox}
`), &obj); err != nil {
		t.Fatal(err)
	}
	if n := m.ReplaceAll(obj); n != 2 {
		t.Errorf("ReplaceAll changed %d strings; want 2", n)
	}
	out, _ := yaml.Marshal(obj)
	for _, want := range []string{"image: 127.0.0.1:5000/gatecheck.dev/echo-backend:dev", "--proxy-image=127.0.0.1:5000/gatecheck.dev/reference-proxy:dev", "image: busybox"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rewritten object lacks %q:\n%s", want, out)
		}
	}
}

func TestFS(t *testing.T) {
	t.Parallel()
	base := fstest.MapFS{
		"base/manifests.yaml": {Data: []byte("image: registry.k8s.io/gateway-api/echo-basic:v1.5.1\n")},
		"tests/x.go":          {Data: []byte("registry.k8s.io/gateway-api/echo-basic:v1.5.1")},
	}
	fsys := m.FS(base)
	got, err := fs.ReadFile(fsys, "base/manifests.yaml")
	if err != nil || string(got) != "image: 127.0.0.1:5000/registry.k8s.io/gateway-api/echo-basic:v1.5.1\n" {
		t.Errorf("ReadFile(yaml) = %q, %v; want the pushed reference", got, err)
	}
	if got, _ := fs.ReadFile(fsys, "tests/x.go"); string(got) != "registry.k8s.io/gateway-api/echo-basic:v1.5.1" {
		t.Errorf("ReadFile(go) = %q; want it unchanged", got)
	}
	if ents, err := fs.ReadDir(fsys, "base"); err != nil || len(ents) != 1 {
		t.Errorf("ReadDir(base) = %v, %v; want one entry", ents, err)
	}
}
