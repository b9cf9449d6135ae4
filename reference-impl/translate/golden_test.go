package translate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

const testController = "gatecheck.dev/reference"

// dataPlaneDoc is a test-only document (apiVersion test.gatecheck.dev/v1, kind DataPlane) that
// sets what ApplyDataPlane sees for one Gateway. Gateways without one get a ready data plane
// at 192.0.2.10.
type dataPlaneDoc struct {
	Gateway   string                      `json:"gateway"`
	Ready     bool                        `json:"ready"`
	Addresses []gwv1.GatewayStatusAddress `json:"addresses"`
	// AddressReason and AddressMessage: why there are no addresses (DataPlane's fields).
	AddressReason  gwv1.GatewayConditionReason `json:"addressReason"`
	AddressMessage string                      `json:"addressMessage"`
}

type goldenOut struct {
	GatewayClasses map[string]gwv1.GatewayClassStatus  `json:"gatewayClasses,omitempty"`
	Gateways       map[string]goldenGateway            `json:"gateways,omitempty"`
	HTTPRoutes     map[string][]gwv1.RouteParentStatus `json:"httpRoutes,omitempty"`
	GRPCRoutes     map[string][]gwv1.RouteParentStatus `json:"grpcRoutes,omitempty"`
	TCPRoutes      map[string][]gwv1.RouteParentStatus `json:"tcpRoutes,omitempty"`
	UDPRoutes      map[string][]gwv1.RouteParentStatus `json:"udpRoutes,omitempty"`
	TLSRoutes      map[string][]gwv1.RouteParentStatus `json:"tlsRoutes,omitempty"`
	// BackendTLSPolicies: the policies' ancestor statuses (backendtls.go).
	BackendTLSPolicies map[string][]gwv1.PolicyAncestorStatus `json:"backendTLSPolicies,omitempty"`
}

type goldenGateway struct {
	Status   gwv1.GatewayStatus `json:"status"`
	Ports    []int32            `json:"ports,omitempty"`
	Snapshot *ir.Snapshot       `json:"snapshot,omitempty"`
}

func testScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, gwv1.Install, gwv1b1.Install} {
		if err := add(s); err != nil {
			t.Fatalf("build scheme: %v", err)
		}
	}
	return s
}

// loadInput reads a multi-document YAML file of Kubernetes objects (and DataPlane documents).
func loadInput(t *testing.T, path string) (*Input, map[types.NamespacedName]DataPlane) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	dec := serializer.NewCodecFactory(testScheme(t)).UniversalDeserializer()
	in := &Input{ControllerName: testController}
	dps := map[types.NamespacedName]DataPlane{}
	rd := utilyaml.NewYAMLReader(bufioReader(raw))
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if bytes.Contains(doc, []byte("test.gatecheck.dev/v1")) {
			var d dataPlaneDoc
			if err := yaml.Unmarshal(doc, &d); err != nil {
				t.Fatalf("%s: document %d: DataPlane: %v", path, i, err)
			}
			ns, name, _ := strings.Cut(d.Gateway, "/")
			dps[types.NamespacedName{Namespace: ns, Name: name}] = DataPlane{Ready: d.Ready, Addresses: d.Addresses, AddressReason: d.AddressReason, AddressMessage: d.AddressMessage}
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if !in.Add(obj) {
			t.Fatalf("%s: document %d: unsupported kind %T", path, i, obj)
		}
	}
	return in, dps
}

func render(out *Output, dps map[types.NamespacedName]DataPlane) goldenOut {
	g := goldenOut{GatewayClasses: out.GatewayClasses, Gateways: map[string]goldenGateway{}}
	for k, res := range out.Gateways {
		dp, ok := dps[k]
		if !ok {
			ip := gwv1.IPAddressType
			dp = DataPlane{Ready: true, Addresses: []gwv1.GatewayStatusAddress{{Type: &ip, Value: "192.0.2.10"}}}
		}
		ApplyDataPlane(res, dp)
		g.Gateways[k.String()] = goldenGateway{Status: res.Status, Ports: res.Ports, Snapshot: res.Snapshot}
	}
	conv := func(m map[types.NamespacedName][]gwv1.RouteParentStatus) map[string][]gwv1.RouteParentStatus {
		if len(m) == 0 {
			return nil
		}
		o := map[string][]gwv1.RouteParentStatus{}
		for k, v := range m {
			o[k.String()] = v
		}
		return o
	}
	g.HTTPRoutes, g.GRPCRoutes, g.TCPRoutes = conv(out.HTTPRoutes), conv(out.GRPCRoutes), conv(out.TCPRoutes)
	g.UDPRoutes, g.TLSRoutes = conv(out.UDPRoutes), conv(out.TLSRoutes)
	for k, v := range out.BackendTLSPolicies {
		if g.BackendTLSPolicies == nil {
			g.BackendTLSPolicies = map[string][]gwv1.PolicyAncestorStatus{}
		}
		g.BackendTLSPolicies[k.String()] = v
	}
	return g
}

// eachGolden runs test as a parallel subtest per testdata/<case>.in.yaml.
func eachGolden(t *testing.T, test func(t *testing.T, inPath string)) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs in testdata: %v", err)
	}
	sort.Strings(ins)
	for _, inPath := range ins {
		t.Run(strings.TrimSuffix(filepath.Base(inPath), ".in.yaml"), func(t *testing.T) {
			t.Parallel()
			test(t, inPath)
		})
	}
}

func TestGolden(t *testing.T) {
	eachGolden(t, func(t *testing.T, inPath string) {
		in, dps := loadInput(t, inPath)
		out := Translate(in)
		for k, g := range out.Gateways {
			if err := g.Snapshot.Validate(); err != nil {
				t.Errorf("gateway %s: snapshot does not validate: %v", k, err)
			}
		}
		got, err := yaml.Marshal(render(out, dps))
		if err != nil {
			t.Fatalf("marshal output: %v", err)
		}
		outPath := strings.TrimSuffix(inPath, ".in.yaml") + ".out.yaml"
		if *update {
			if err := os.WriteFile(outPath, got, 0o644); err != nil {
				t.Fatalf("write %s: %v", outPath, err)
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
