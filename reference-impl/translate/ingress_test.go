package translate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// loadIngressInput is loadInput for files that also hold Ingresses and IngressClasses.
func loadIngressInput(t *testing.T, path string) *Input {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rest [][]byte
	var ings []*networkingv1.Ingress
	var classes []*networkingv1.IngressClass
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var tm struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch {
		case tm.APIVersion == "networking.k8s.io/v1" && tm.Kind == "Ingress":
			o := &networkingv1.Ingress{}
			if err := yaml.UnmarshalStrict(doc, o); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			ings = append(ings, o)
		case tm.APIVersion == "networking.k8s.io/v1" && tm.Kind == "IngressClass":
			o := &networkingv1.IngressClass{}
			if err := yaml.UnmarshalStrict(doc, o); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			classes = append(classes, o)
		default:
			rest = append(rest, doc)
		}
	}
	tmp := filepath.Join(t.TempDir(), "rest.yaml")
	if err := os.WriteFile(tmp, bytes.Join(rest, []byte("\n---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	in, _ := loadInput(t, tmp)
	in.Ingresses, in.IngressClasses = ings, classes
	return in
}

// TestIngressGolden: the snapshot of each data-plane Gateway in testdata/ingress/<case>.in.yaml
// is exactly <case>.out.yaml, validates, and the Ingress TLS Secrets are among SecretRefs.
func TestIngressGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/ingress/*.in.yaml")
	if len(ins) == 0 {
		t.Fatal("no inputs")
	}
	for _, inPath := range ins {
		t.Run(filepath.Base(inPath), func(t *testing.T) {
			in := loadIngressInput(t, inPath)
			out := Translate(in)
			dps := IngressDataPlanes(in)
			snaps := map[string]any{}
			for class, gw := range dps {
				res, ok := out.Gateways[gw]
				if !ok {
					t.Fatalf("class %s: data-plane Gateway %s not translated", class, gw)
				}
				if err := res.Snapshot.Validate(); err != nil {
					t.Fatalf("snapshot of %s does not validate: %v", gw, err)
				}
				snaps[gw.String()] = map[string]any{"ports": res.Ports, "snapshot": res.Snapshot}
			}
			refs := SecretRefs(in)
			for _, ing := range in.Ingresses {
				if _, ours := dps[IngressClassOf(in, ing)]; !ours {
					continue
				}
				for _, tl := range ing.Spec.TLS {
					want := types.NamespacedName{Namespace: ing.Namespace, Name: tl.SecretName}
					found := false
					for _, r := range refs {
						found = found || r == want
					}
					if !found {
						t.Errorf("SecretRefs %v lacks the Ingress TLS Secret %s", refs, want)
					}
				}
			}
			got, err := yaml.Marshal(snaps)
			if err != nil {
				t.Fatal(err)
			}
			outPath := strings.TrimSuffix(inPath, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(outPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("read %s (run with -update): %v", outPath, err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s (-want +got):\n%s", outPath, d)
			}
		})
	}
}
