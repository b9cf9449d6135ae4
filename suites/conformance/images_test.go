package conformance

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/gateway-api/conformance"

	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/internal/imagemap"
)

// TestEveryUpstreamImageIsPushed: with --registry, the upstream suite reads its manifests
// through imagemap.FS; every image they name must be one gatecheck builds and pushes (the
// echo-basic and CoreDNS specs' tags), so no pod waits for registry.k8s.io.
func TestEveryUpstreamImageIsPushed(t *testing.T) {
	t.Parallel()
	m := imagemap.Map{}
	for _, s := range images.Default() {
		for _, tag := range s.Tags {
			m[tag] = "127.0.0.1:5000/" + tag
		}
	}
	fsys := m.FS(&conformance.Manifests)
	imageLine := regexp.MustCompile(`(?m)^\s*-?\s*image:\s*"?([^"\s]+)`)
	seen := 0
	err := fs.WalkDir(&conformance.Manifests, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		if strings.HasPrefix(path, "mesh/") {
			// MESH-* profiles' echo-advanced: gatecheck neither loads nor pushes it (no mesh profile runs).
			return nil
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		for _, mm := range imageLine.FindAllStringSubmatch(string(data), -1) {
			seen++
			if !strings.HasPrefix(mm[1], "127.0.0.1:5000/") {
				t.Errorf("%s: image %s is not one gatecheck pushes (add its tag to cluster/images)", path, mm[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 30 {
		t.Fatalf("found %d image lines in the upstream manifests; want the ~36 of v1.6.3", seen)
	}
}
