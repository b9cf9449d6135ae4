package conformance

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"

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

// The suite's entry point rewrites the manifests it reads when gatecheck passes a map.
func TestPushedImagesRewritesTheSuitesManifests(t *testing.T) {
	t.Parallel()
	opts := suite.ConformanceOptions{ManifestFS: []fs.FS{&conformance.Manifests}}
	if err := pushedImages(&opts, "registry.k8s.io/gateway-api/echo-basic:v1.5.1=127.0.0.1:5000/registry.k8s.io/gateway-api/echo-basic:v1.5.1"); err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(opts.ManifestFS[0], "base/manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "image: 127.0.0.1:5000/registry.k8s.io/gateway-api/echo-basic:v1.5.1") || strings.Contains(string(data), "image: registry.k8s.io/gateway-api/echo-basic:v1.5.1") {
		t.Errorf("base/manifests.yaml through the suite's FS does not name the pushed echo-basic")
	}
	plain := suite.ConformanceOptions{}
	if err := pushedImages(&plain, ""); err != nil || plain.ManifestFS != nil {
		t.Errorf("no map: %v, %v; want the options untouched", err, plain.ManifestFS)
	}
	if err := pushedImages(&plain, "garbage"); err == nil || !strings.Contains(err.Error(), imagemap.Env) {
		t.Errorf("malformed map: %v; want an error naming %s", err, imagemap.Env)
	}
}
