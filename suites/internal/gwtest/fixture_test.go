package gwtest

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	canary "github.com/gatecheck/gatecheck/fixtures/canary"
	grpcfx "github.com/gatecheck/gatecheck/fixtures/grpc"
	mirror "github.com/gatecheck/gatecheck/fixtures/mirror"
	propagation "github.com/gatecheck/gatecheck/fixtures/propagation"
	tcp "github.com/gatecheck/gatecheck/fixtures/tcp"
	"github.com/gatecheck/gatecheck/verdict"
)

func baseData(extra map[string]any) map[string]any {
	d := map[string]any{"Namespace": "ns1", "GatewayClass": "gc", "EchoImage": "img:dev", "PullPolicy": "IfNotPresent"}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// TestEveryFixtureRenders renders each suite's fixtures with the data its specs pass and
// checks the objects: every one namespaced to the suite, every route attached to the suite's
// Gateway, every Deployment using the echo image.
func TestEveryFixtureRenders(t *testing.T) {
	t.Parallel()
	weights := []verdict.Backend{{Name: "v1", Weight: 90}, {Name: "v2", Weight: 10}}
	cases := []struct {
		name  string
		fsys  fs.FS
		file  string
		extra map[string]any
		// kinds counts the objects by kind.
		kinds map[string]int
	}{
		{"canary suite", canary.Files, "suite.yaml", nil, map[string]int{"Gateway": 1, "Deployment": 3, "Service": 3}},
		{"canary split", canary.Files, "split.yaml", map[string]any{"Route": "split-90-10", "Weights": weights}, map[string]int{"HTTPRoute": 1}},
		{"canary header", canary.Files, "header.yaml", nil, map[string]int{"HTTPRoute": 1}},
		{"canary shift", canary.Files, "shift.yaml", map[string]any{"V1": 50, "V2": 50}, map[string]int{"HTTPRoute": 1}},
		{"mirror suite", mirror.Files, "suite.yaml", nil, map[string]int{"Gateway": 1, "Deployment": 2, "Service": 5}},
		{"mirror delivery", mirror.Files, "delivery.yaml", map[string]any{"Route": "m", "Mirror": "mirror"}, map[string]int{"HTTPRoute": 1}},
		{"mirror fraction", mirror.Files, "fraction.yaml", map[string]any{"Percent": 25, "Numerator": 1, "Denominator": 3, "ShortPercent": 22}, map[string]int{"HTTPRoute": 3}},
		{"mirror isolation", mirror.Files, "isolation.yaml", map[string]any{"SlowImage": "img:dev"}, map[string]int{"HTTPRoute": 1, "Deployment": 1, "Service": 1}},
		{"grpc suite", grpcfx.Files, "suite.yaml", nil, map[string]int{"Gateway": 1, "Deployment": 3, "Service": 3}},
		{"grpc match", grpcfx.Files, "match.yaml", nil, map[string]int{"GRPCRoute": 1}},
		{"grpc weights", grpcfx.Files, "weights.yaml", nil, map[string]int{"GRPCRoute": 1}},
		{"grpc streams", grpcfx.Files, "streams.yaml", nil, map[string]int{"GRPCRoute": 1}},
		{"tcp suite", tcp.Files, "suite.yaml", nil, map[string]int{"Gateway": 1, "Deployment": 2, "Service": 2}},
		{"tcp listeners", tcp.Files, "listeners.yaml", nil, map[string]int{"TCPRoute": 2}},
		{"tcp weights", tcp.Files, "weights.yaml", nil, map[string]int{"TCPRoute": 1}},
		{"tcp longlived", tcp.Files, "longlived.yaml", map[string]any{"Backend": "t2"}, map[string]int{"TCPRoute": 2}},
		{"propagation suite", propagation.Files, "suite.yaml", nil, map[string]int{"Gateway": 1, "Deployment": 1, "Service": 2}},
		{"propagation create", propagation.Files, "create.yaml", map[string]any{"Route": "prop-create-0"}, map[string]int{"HTTPRoute": 1}},
		{"propagation change", propagation.Files, "change.yaml", map[string]any{"Route": "prop-change", "Service": "prop", "Port": 8080, "Flip": "3"}, map[string]int{"HTTPRoute": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			objs, err := Render(c.fsys, c.file, baseData(c.extra))
			if err != nil {
				t.Fatalf("Render(%s) = %v", c.file, err)
			}
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.Obj.GetKind()]++
				if got := o.Obj.GetNamespace(); got != "ns1" {
					t.Errorf("%s namespace: got %q; want ns1", o, got)
				}
				if strings.HasSuffix(o.Obj.GetKind(), "Route") {
					parents, _, _ := nestedSlice(o.Obj.Object, "spec", "parentRefs")
					if len(parents) == 0 {
						t.Errorf("%s: no spec.parentRefs", o)
					}
				}
				if o.Obj.GetKind() == "Deployment" {
					cs, _, _ := nestedSlice(o.Obj.Object, "spec", "template", "spec", "containers")
					img, _ := cs[0].(map[string]any)["image"].(string)
					if img != "img:dev" {
						t.Errorf("%s image: got %q; want img:dev", o, img)
					}
				}
			}
			if diff := cmp.Diff(c.kinds, kinds); diff != "" {
				t.Errorf("objects by kind (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"missing.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{.Route}}, namespace: {{.Namespace}}}\n")},
		"badopt.yaml":  {Data: []byte(`{{template "echo" (backend . "x" "colour=blue")}}`)},
		"badmode.yaml": {Data: []byte(`{{template "echo" (backend . "x" "mode=udp")}}`)},
		"noname.yaml":  {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n")},
	}
	cases := []struct{ file, want string }{
		{"missing.yaml", `map has no entry for key "Route"`},
		{"badopt.yaml", `unknown key "Colour"`},
		{"badmode.yaml", `mode "udp": want http, grpc or tcp`},
		{"noname.yaml", "metadata.name is required"},
		{"absent.yaml", "fixture absent.yaml"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			_, err := Render(fsys, c.file, baseData(nil))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Render(%s) error = %v; want one containing %q", c.file, err, c.want)
			}
		})
	}
}

func TestEchoPartialOptions(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{"x.yaml": {Data: []byte(`{{template "echo" (backend . "mirror-refused" "noDeployment=true" "selector=mirror" "targetPort=9999" "port2=8080")}}`)}}
	objs, err := Render(fsys, "x.yaml", baseData(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Obj.GetKind() != "Service" {
		t.Fatalf("got %v; want only a Service (noDeployment)", objs)
	}
	sel, _, _ := nestedString(objs[0].Obj.Object, "spec", "selector", "app")
	ports, _, _ := nestedSlice(objs[0].Obj.Object, "spec", "ports")
	var got []string
	for _, p := range ports {
		m := p.(map[string]any)
		got = append(got, toString(m["port"])+"->"+toString(m["targetPort"]))
	}
	if diff := cmp.Diff([]string{"80->9999", "8080->9999"}, got); sel != "mirror" || diff != "" {
		t.Errorf("selector %q (want mirror), ports (-want +got):\n%s", sel, diff)
	}
}
