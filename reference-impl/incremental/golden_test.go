package incremental

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// The golden inputs of package translate (its testdata/<case>.in.yaml) drive the differential
// tests here: whatever translate.Translate makes of them, Translator must make too.

const testController = "gatecheck.dev/reference"

const goldenDir = "../translate/testdata"

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// eachGolden runs test as a parallel subtest per golden input.
func eachGolden(t *testing.T, test func(t *testing.T, inPath string)) {
	ins, err := filepath.Glob(filepath.Join(goldenDir, "*.in.yaml"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs in %s: %v", goldenDir, err)
	}
	sort.Strings(ins)
	for _, inPath := range ins {
		t.Run(strings.TrimSuffix(filepath.Base(inPath), ".in.yaml"), func(t *testing.T) {
			t.Parallel()
			test(t, inPath)
		})
	}
}

// loadInput reads a golden input: a multi-document YAML file of Kubernetes objects (its
// test-only DataPlane documents are skipped: the outputs here are compared before any data
// plane is applied).
func loadInput(t *testing.T, path string) *translate.Input {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, gwv1.Install, gwv1b1.Install} {
		if err := add(s); err != nil {
			t.Fatalf("build scheme: %v", err)
		}
	}
	dec := serializer.NewCodecFactory(s).UniversalDeserializer()
	in := &translate.Input{ControllerName: testController}
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) == 0 || bytes.Contains(doc, []byte("test.gatecheck.dev/v1")) {
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
	return in
}

// renderYAML renders an output for comparison (before ApplyDataPlane, which changes results
// in place).
func renderYAML(t *testing.T, out *translate.Output) string {
	t.Helper()
	type gateway struct {
		Status   gwv1.GatewayStatus `json:"status"`
		Ports    []int32            `json:"ports,omitempty"`
		UDPPorts []int32            `json:"udpPorts,omitempty"`
		Valid    bool               `json:"valid"`
		Snapshot any                `json:"snapshot,omitempty"`
	}
	gws := map[string]gateway{}
	for k, g := range out.Gateways {
		gws[k.String()] = gateway{Status: g.Status, Ports: g.Ports, UDPPorts: g.UDPPorts, Valid: g.Valid, Snapshot: g.Snapshot}
	}
	conv := func(m map[types.NamespacedName][]gwv1.RouteParentStatus) map[string][]gwv1.RouteParentStatus {
		o := map[string][]gwv1.RouteParentStatus{}
		for k, v := range m {
			o[k.String()] = v
		}
		return o
	}
	policies := map[string][]gwv1.PolicyAncestorStatus{}
	for k, v := range out.BackendTLSPolicies {
		policies[k.String()] = v
	}
	b, err := yaml.Marshal(map[string]any{
		"gatewayClasses": out.GatewayClasses, "gateways": gws,
		"httpRoutes": conv(out.HTTPRoutes), "grpcRoutes": conv(out.GRPCRoutes), "tcpRoutes": conv(out.TCPRoutes),
		"udpRoutes": conv(out.UDPRoutes), "tlsRoutes": conv(out.TLSRoutes), "backendTLSPolicies": policies,
	})
	if err != nil {
		t.Fatalf("marshal output: %v", err)
	}
	return string(b)
}
