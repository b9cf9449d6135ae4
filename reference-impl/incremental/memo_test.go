package incremental

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// version gives every object of in what the API server would: a UID, a generation for the
// kinds that have one, and a resourceVersion.
func version(in *translate.Input) {
	set := func(o metav1.Object, gen bool) {
		if o.GetUID() == "" {
			o.SetUID(types.UID("uid-" + o.GetNamespace() + "-" + o.GetName()))
		}
		if gen && o.GetGeneration() == 0 {
			o.SetGeneration(1)
		}
		if o.GetResourceVersion() == "" {
			o.SetResourceVersion("1")
		}
	}
	for _, o := range in.GatewayClasses {
		set(o, true)
	}
	for _, o := range in.Gateways {
		set(o, true)
	}
	for _, o := range in.HTTPRoutes {
		set(o, true)
	}
	for _, o := range in.GRPCRoutes {
		set(o, true)
	}
	for _, o := range in.TCPRoutes {
		set(o, true)
	}
	for _, o := range in.UDPRoutes {
		set(o, true)
	}
	for _, o := range in.TLSRoutes {
		set(o, true)
	}
	for _, o := range in.ReferenceGrants {
		set(o, true)
	}
	for _, o := range in.Services {
		set(o, false)
	}
	for _, o := range in.EndpointSlices {
		set(o, false)
	}
	for _, o := range in.Secrets {
		set(o, false)
	}
	for _, o := range in.Namespaces {
		set(o, false)
	}
	for _, o := range in.BackendTLSPolicies {
		set(o, true)
	}
	for _, o := range in.ConfigMaps {
		set(o, false)
	}
	for _, o := range in.Ingresses {
		set(o, true)
	}
	for _, o := range in.IngressClasses {
		set(o, true)
	}
}

// TestTranslatorMatchesTranslate runs every golden input through a memo twice (all misses, then all
// hits) and compares both with a plain Translate.
func TestTranslatorMatchesTranslate(t *testing.T) {
	eachGolden(t, func(t *testing.T, inPath string) {
		in := loadInput(t, inPath)
		version(in)
		want := renderYAML(t, translate.Translate(in))
		m := New()
		for pass, wantHits := range []bool{false, true} {
			out := m.Translate(in)
			if diff := cmp.Diff(want, renderYAML(t, out)); diff != "" {
				t.Errorf("pass %d: memo output differs from Translate (-want +got):\n%s", pass, diff)
			}
			routes := len(in.HTTPRoutes) + len(in.GRPCRoutes) + len(in.TCPRoutes) + len(in.UDPRoutes) + len(in.TLSRoutes)
			if wantHits && (m.Hits != routes || m.Misses != 0) {
				t.Errorf("pass %d: hits %d, misses %d; want %d hits, 0 misses", pass, m.Hits, m.Misses, routes)
			}
		}
	})
}

// memoInput is one Gateway with two HTTP listeners, a backend Service and n routes.
func memoInput(n int) *translate.Input {
	ns := "bench"
	in := &translate.Input{ControllerName: testController}
	in.Namespaces = []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: ns}}}
	in.GatewayClasses = []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "gc"}, Spec: gwv1.GatewayClassSpec{ControllerName: testController}}}
	in.Gateways = []*gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: ns}, Spec: gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{
		{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
		{Name: "http-example", Port: 8080, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.example")},
	}}}}
	in.Services = []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt(3000)}}}}}
	in.Services = append(in.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt(3000)}}}})
	in.EndpointSlices = []*discoveryv1.EndpointSlice{{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](3000)}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}}},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "other-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "other"}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](3000)}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.2.0.1"}}},
	}}
	for i := range n {
		in.HTTPRoutes = append(in.HTTPRoutes, memoRoute(i))
	}
	version(in)
	return in
}

func memoRoute(i int) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r-%03d", i), Namespace: "bench", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC))},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Hostnames:       []gwv1.Hostname{gwv1.Hostname(fmt.Sprintf("r-%03d.example", i))},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](8080)}}}}}},
		},
	}
}

// TestTranslatorFollowsChanges applies the changes a cluster sees one after another and checks, after
// each, that the memo's output equals a fresh Translate and that only what had to be translated
// again was.
func TestTranslatorFollowsChanges(t *testing.T) {
	in := memoInput(20)
	m := New()
	steps := []struct {
		name   string
		change func()
		// misses expected; -1: every route
		misses int
	}{
		{"first translation", func() {}, -1},
		{"nothing changed", func() {}, 0},
		{"route added", func() {
			r := memoRoute(20)
			r.UID, r.Generation, r.ResourceVersion = "uid-new", 1, "5"
			in.HTTPRoutes = append(in.HTTPRoutes, r)
		}, 1},
		{"route spec changed", func() {
			r := in.HTTPRoutes[3]
			r.Spec.Hostnames = []gwv1.Hostname{"changed.example"}
			r.Generation++
			r.ResourceVersion = "6"
		}, 1},
		{"route status written (generation unchanged)", func() {
			in.HTTPRoutes[4].ResourceVersion = "7"
			in.HTTPRoutes[4].Status.Parents = []gwv1.RouteParentStatus{{ControllerName: testController, ParentRef: gwv1.ParentReference{Name: "gw"}}}
		}, 0},
		{"route deleted", func() { in.HTTPRoutes = append(in.HTTPRoutes[:5:5], in.HTTPRoutes[6:]...) }, 0},
		{"route recreated under the same name", func() {
			r := memoRoute(7)
			r.UID, r.Generation, r.ResourceVersion = "uid-recreated", 1, "8"
			r.Spec.Hostnames = []gwv1.Hostname{"recreated.example"}
			in.HTTPRoutes[6] = r
		}, 1},
		{"endpoints changed", func() {
			in.EndpointSlices[0].Endpoints = append(in.EndpointSlices[0].Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.1.0.2"}})
			in.EndpointSlices[0].ResourceVersion = "9"
		}, -1},
		{"gateway listener changed", func() {
			in.Gateways[0].Spec.Listeners[1].Hostname = ptr.To[gwv1.Hostname]("r-001.example")
			in.Gateways[0].Generation++
		}, -1},
		{"gateway status written", func() {
			in.Gateways[0].ResourceVersion = "10"
			in.Gateways[0].Status.Conditions = []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue}}
		}, 0},
		{"service deleted", func() {
			in.Services = slices.DeleteFunc(in.Services, func(s *corev1.Service) bool { return s.Name == "echo" })
		}, -1},
		// From here on the memo must re-translate only the routes of the Service that changed.
		{"five routes moved to Service other", func() {
			for _, r := range in.HTTPRoutes[:5] {
				r.Spec.Rules[0].BackendRefs[0].Name = "other"
				r.Generation++
			}
		}, 5},
		{"endpoints of Service other changed", func() {
			in.EndpointSlices[1].Endpoints = append(in.EndpointSlices[1].Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.2.0.2"}})
			in.EndpointSlices[1].ResourceVersion = "11"
		}, 5},
		{"a Service no route names added", func() {
			in.Services = append(in.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "unused", Namespace: "bench", UID: "uid-unused", ResourceVersion: "12"}})
		}, 0},
		{"a route names a Service that is not there yet", func() {
			r := in.HTTPRoutes[6]
			r.Spec.Rules[0].BackendRefs[0].Name = "late"
			r.Generation++
		}, 1},
		{"that Service created", func() {
			in.Services = append(in.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "bench", UID: "uid-late", ResourceVersion: "13"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}})
		}, 1},
		{"Service echo back", func() {
			in.Services = append(in.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "bench", UID: "uid-echo-2", ResourceVersion: "14"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt(3000)}}}})
		}, 14},
	}
	for _, s := range steps {
		s.change()
		want := renderYAML(t, translate.Translate(in))
		out := m.Translate(in)
		if diff := cmp.Diff(want, renderYAML(t, out)); diff != "" {
			t.Fatalf("%s: memo output differs from Translate (-want +got):\n%s", s.name, diff)
		}
		want2 := s.misses
		if want2 < 0 {
			want2 = len(in.HTTPRoutes)
		}
		if m.Misses != want2 || m.Hits != len(in.HTTPRoutes)-want2 {
			t.Errorf("%s: %d misses, %d hits; want %d misses, %d hits", s.name, m.Misses, m.Hits, want2, len(in.HTTPRoutes)-want2)
		}
	}
}

// TestTranslatorOffWithoutVersions: hand-built objects without versions cannot be memoised; the
// memo must then translate everything every time.
func TestTranslatorOffWithoutVersions(t *testing.T) {
	in := memoInput(3)
	in.Services[0].ResourceVersion = ""
	m := New()
	for range 2 {
		m.Translate(in)
		if m.Hits != 0 {
			t.Errorf("hits %d with an unversioned Service; want 0", m.Hits)
		}
	}
	in.Services[0].ResourceVersion = "3"
	in.HTTPRoutes[0].Generation = 0 // an unversioned route is translated every time
	m.Translate(in)
	m.Translate(in)
	if m.Misses != 1 || m.Hits != 2 {
		t.Errorf("unversioned route: %d misses, %d hits; want 1, 2", m.Misses, m.Hits)
	}
}

// TestTranslatorSpeedup compares a plain Translate of 1,000 routes with a memoised one after one
// route was added (the propagation path).
func TestTranslatorSpeedup(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	in := memoInput(1000)
	// The controller's cache lists objects in no particular order: shuffle before every call.
	rng := rand.New(rand.NewPCG(3, 4))
	shuffle := func() {
		rng.Shuffle(len(in.HTTPRoutes), func(i, j int) { in.HTTPRoutes[i], in.HTTPRoutes[j] = in.HTTPRoutes[j], in.HTTPRoutes[i] })
	}
	full := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			shuffle()
			translate.Translate(in)
		}
	})
	m := New()
	m.Translate(in)
	gen := int64(1)
	memo := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			// One route changes between calls, as when routes are created one by one.
			gen++
			in.HTTPRoutes[500].Generation = gen
			shuffle()
			m.Translate(in)
			if m.Misses != 1 {
				b.Fatalf("%d misses; want 1", m.Misses)
			}
		}
	})
	t.Logf("1,000 routes, one changed: translate %v per change with the memo, %v without (baseline); ratio %.3f",
		time.Duration(memo.NsPerOp()), time.Duration(full.NsPerOp()), float64(memo.NsPerOp())/float64(full.NsPerOp()))
}
