package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/gatecheck/gatecheck"
	"github.com/gatecheck/gatecheck/impls"
)

func TestExtractFilesOncePerContent(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	fsys := fstest.MapFS{"impls/x/profile.yaml": {Data: []byte("name: x\n")}, "kind-config.yaml": {Data: []byte("kind: Cluster\n")}}
	a, err := extractFiles(fsys, base)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(a, "impls/x/profile.yaml")); err != nil || string(got) != "name: x\n" {
		t.Fatalf("extracted profile = %q, %v; want %q", got, err, "name: x\n")
	}
	b, err := extractFiles(fsys, base)
	if err != nil || b != a {
		t.Fatalf("second extraction = %s, %v; want the same directory %s", b, err, a)
	}
	fsys["impls/x/profile.yaml"] = &fstest.MapFile{Data: []byte("name: y\n")}
	c, err := extractFiles(fsys, base)
	if err != nil || c == a {
		t.Fatalf("changed content extracted to %s, %v; want a directory other than %s", c, err, a)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 2 {
		t.Errorf("%d entries in %s; want 2 (no partial copies left)", len(entries), base)
	}
}

// The binary must carry what `gatecheck run --impl reference` reads, at the paths the profile names.
func TestBundleCarriesTheReferenceProfileAndItsManifests(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"impls/reference/profile.yaml", "reference-impl/config/20-controller.yaml", "kind-config.yaml"} {
		if _, err := gatecheck.Files.Open(p); err != nil {
			t.Errorf("bundle lacks %s: %v", p, err)
		}
	}
}

// Every profile loads from the files the binary carries, as an installed gatecheck extracts
// them: what they name (manifests, reference-helm's chart and its templates) is in the bundle.
func TestBundledProfilesLoad(t *testing.T) {
	t.Parallel()
	root, err := extractFiles(gatecheck.Files, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := impls.List(root)
	if len(names) < 3 {
		t.Fatalf("bundled profiles %q; want at least reference, reference-helm and traefik", names)
	}
	for _, n := range names {
		p, err := impls.Find(root, n)
		if err != nil {
			t.Errorf("bundled profile %s: %v", n, err)
			continue
		}
		if p.Install.Kind == impls.InstallManifests {
			if _, err := p.ManifestFiles(); err != nil {
				t.Errorf("bundled profile %s: %v", n, err)
			}
		}
	}
	for _, f := range []string{"Chart.yaml", "values.yaml", "templates/controller.yaml", "templates/rbac.yaml", "templates/gatewayclass.yaml"} {
		if _, err := os.Stat(filepath.Join(root, "impls/reference-helm/chart", f)); err != nil {
			t.Errorf("bundled reference-helm chart: %v", err)
		}
	}
}
