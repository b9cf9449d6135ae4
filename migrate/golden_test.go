package migrate

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

// TestGolden: each testdata/<case>.in.yaml (Ingresses and Services) migrates to exactly
// testdata/<case>.out.yaml, findings included (the comment block at its top).
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	sort.Strings(ins)
	for _, inPath := range ins {
		t.Run(strings.TrimSuffix(filepath.Base(inPath), ".in.yaml"), func(t *testing.T) {
			f, err := os.Open(inPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var objs Objects
			if err := Decode(f, inPath, &objs); err != nil {
				t.Fatal(err)
			}
			res, err := Convert(objs.Ingresses, Options{GatewayClass: "gatecheck-reference", Services: objs.Services})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			strictlyTyped(t, got)
			outPath := strings.TrimSuffix(inPath, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(outPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("read %s (run with -update to create it): %v", outPath, err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", outPath, diff)
			}
		})
	}
}

// strictlyTyped decodes every output document strictly into its Gateway API type.
func strictlyTyped(t *testing.T, out []byte) {
	t.Helper()
	for i, doc := range strings.Split(string(out), "\n---\n")[1:] {
		var tm struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch tm.Kind {
		case "Gateway":
			obj = &gwv1.Gateway{}
		case "HTTPRoute":
			obj = &gwv1.HTTPRoute{}
		default:
			t.Fatalf("document %d: unexpected kind %q", i, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
	}
	_ = utilyaml.NewYAMLReader
}
