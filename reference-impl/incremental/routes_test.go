package incremental

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// TestRoutesMatchesTranslate walks random route additions, changes and deletions (HTTP,
// gRPC, TCP, UDP and TLS; attached to one or two listeners, to no listener of ours, with missing
// backends; ties on the creation second) through Translator.Routes, merges each step's output into
// the state so far, and compares it with a full Translate of the same input after every step.
func TestRoutesMatchesTranslate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	in := memoInput(40)
	in.Gateways[0].Spec.Listeners = append(in.Gateways[0].Spec.Listeners, gwv1.Listener{Name: "tcp", Port: 9000, Protocol: gwv1.TCPProtocolType},
		gwv1.Listener{Name: "udp", Port: 9001, Protocol: gwv1.UDPProtocolType},
		gwv1.Listener{Name: "tls", Port: 9443, Protocol: gwv1.TLSProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.example"),
			TLS: &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModePassthrough)}})
	version(in)
	m := New()
	cur := m.Translate(in)
	serial := 0
	meta := func(kind string) metav1.ObjectMeta {
		serial++
		return metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("%s-%d", kind, serial), UID: types.UID(fmt.Sprintf("uid-%d", serial)), Generation: 1, ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, rng.IntN(30), 0, time.UTC))}
	}
	backend := func() gwv1.BackendObjectReference {
		name := []gwv1.ObjectName{"echo", "other", "missing"}[rng.IntN(3)]
		return gwv1.BackendObjectReference{Name: name, Port: ptr.To[gwv1.PortNumber](8080)}
	}
	parent := func() []gwv1.ParentReference {
		switch rng.IntN(6) {
		case 0:
			return []gwv1.ParentReference{{Name: "not-ours"}}
		case 1:
			return []gwv1.ParentReference{{Name: "gw", SectionName: ptr.To[gwv1.SectionName]("http")}}
		}
		return []gwv1.ParentReference{{Name: "gw"}}
	}
	host := func() []gwv1.Hostname {
		if rng.IntN(4) == 0 {
			return []gwv1.Hostname{"other.test"} // only the listener without a hostname
		}
		return []gwv1.Hostname{gwv1.Hostname(fmt.Sprintf("h%d.example", rng.IntN(5)))}
	}
	newRoute := func() metav1.Object {
		switch rng.IntN(7) {
		case 0:
			return &gwv1.GRPCRoute{ObjectMeta: meta("grpc"), Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent()}, Hostnames: host(),
				Rules: []gwv1.GRPCRouteRule{{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: backend()}}}}}}}
		case 2:
			return &gwv1.UDPRoute{ObjectMeta: meta("udp"), Spec: gwv1.UDPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw", SectionName: ptr.To[gwv1.SectionName]("udp")}}},
				Rules: []gwv1.UDPRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: backend()}}}}}}
		case 3:
			return &gwv1.TLSRoute{ObjectMeta: meta("tls"), Spec: gwv1.TLSRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw", SectionName: ptr.To[gwv1.SectionName]("tls")}}}, Hostnames: host(),
				Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: backend()}}}}}}
		case 1:
			return &gwv1.TCPRoute{ObjectMeta: meta("tcp"), Spec: gwv1.TCPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw", SectionName: ptr.To[gwv1.SectionName]("tcp")}}},
				Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: backend()}}}}}}
		}
		return &gwv1.HTTPRoute{ObjectMeta: meta("http"), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent()}, Hostnames: host(),
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: backend()}}}}}}}
	}
	kindOf := func(o metav1.Object) string {
		switch o.(type) {
		case *gwv1.GRPCRoute:
			return kindGRPC
		case *gwv1.TCPRoute:
			return kindTCP
		case *gwv1.UDPRoute:
			return kindUDP
		case *gwv1.TLSRoute:
			return kindTLS
		}
		return kindHTTP
	}
	all := func() []metav1.Object {
		var out []metav1.Object
		for _, r := range in.HTTPRoutes {
			out = append(out, r)
		}
		for _, r := range in.GRPCRoutes {
			out = append(out, r)
		}
		for _, r := range in.TCPRoutes {
			out = append(out, r)
		}
		for _, r := range in.UDPRoutes {
			out = append(out, r)
		}
		for _, r := range in.TLSRoutes {
			out = append(out, r)
		}
		return out
	}
	put := func(o metav1.Object) {
		if !in.AddRoute(o) {
			t.Fatalf("AddRoute refused %T", o)
		}
	}
	drop := func(o metav1.Object) {
		in.HTTPRoutes = slices.DeleteFunc(in.HTTPRoutes, func(x *gwv1.HTTPRoute) bool { return x.UID == o.GetUID() })
		in.GRPCRoutes = slices.DeleteFunc(in.GRPCRoutes, func(x *gwv1.GRPCRoute) bool { return x.UID == o.GetUID() })
		in.TCPRoutes = slices.DeleteFunc(in.TCPRoutes, func(x *gwv1.TCPRoute) bool { return x.UID == o.GetUID() })
		in.UDPRoutes = slices.DeleteFunc(in.UDPRoutes, func(x *gwv1.UDPRoute) bool { return x.UID == o.GetUID() })
		in.TLSRoutes = slices.DeleteFunc(in.TLSRoutes, func(x *gwv1.TLSRoute) bool { return x.UID == o.GetUID() })
	}
	for step := range 150 {
		var changes []RouteChange
		for range 1 + rng.IntN(3) {
			existing := all()
			switch op := rng.IntN(10); {
			case op < 4 || len(existing) == 0:
				r := newRoute()
				put(r)
				changes = append(changes, RouteChange{Kind: kindOf(r), Key: nn(r.GetNamespace(), r.GetName()), Object: r})
			case op < 7:
				// A spec change: a new object (as the cache holds) with the next generation.
				old := existing[rng.IntN(len(existing))]
				r := newRoute()
				for kindOf(r) != kindOf(old) {
					r = newRoute()
				}
				r.SetName(old.GetName())
				r.SetUID(old.GetUID())
				r.SetCreationTimestamp(old.GetCreationTimestamp())
				r.SetGeneration(old.GetGeneration() + 1)
				drop(old)
				put(r)
				changes = append(changes, RouteChange{Kind: kindOf(r), Key: nn(r.GetNamespace(), r.GetName()), Object: r})
			case op < 9:
				old := existing[rng.IntN(len(existing))]
				drop(old)
				changes = append(changes, RouteChange{Kind: kindOf(old), Key: nn(old.GetNamespace(), old.GetName())})
			default:
				// A label change: same generation, still reported.
				old := existing[rng.IntN(len(existing))]
				old.SetLabels(map[string]string{"step": fmt.Sprint(step)})
				changes = append(changes, RouteChange{Kind: kindOf(old), Key: nn(old.GetNamespace(), old.GetName()), Object: old})
			}
		}
		out, ok := m.Routes(in, changes)
		if !ok {
			t.Fatalf("step %d: Routes refused a routes-only change", step)
		}
		for k, g := range out.Gateways {
			cur.Gateways[k] = g
		}
		for _, c := range changes {
			st := map[string]map[types.NamespacedName][]gwv1.RouteParentStatus{kindHTTP: cur.HTTPRoutes, kindGRPC: cur.GRPCRoutes, kindTCP: cur.TCPRoutes, kindUDP: cur.UDPRoutes, kindTLS: cur.TLSRoutes}[c.Kind]
			got := map[string]map[types.NamespacedName][]gwv1.RouteParentStatus{kindHTTP: out.HTTPRoutes, kindGRPC: out.GRPCRoutes, kindTCP: out.TCPRoutes, kindUDP: out.UDPRoutes, kindTLS: out.TLSRoutes}[c.Kind]
			delete(st, c.Key)
			if s, ok := got[c.Key]; ok {
				st[c.Key] = s
			}
		}
		want := translate.Translate(in)
		if diff := cmp.Diff(renderYAML(t, want), renderYAML(t, cur)); diff != "" {
			t.Fatalf("step %d (%d changes): incremental state differs from Translate (-want +got):\n%s", step, len(changes), diff)
		}
	}
	if len(in.HTTPRoutes)+len(in.GRPCRoutes)+len(in.TCPRoutes) < 20 {
		t.Fatalf("the walk ended with few routes; it should exercise large lists")
	}

	// Anything but routes changing makes Routes decline until the next Translate.
	in.Services[0].ResourceVersion = "2"
	if _, ok := m.Routes(in, nil); ok {
		t.Fatalf("Routes accepted a Service change")
	}
	m.Translate(in)
	in.Gateways[0].Generation++
	if _, ok := m.Routes(in, nil); ok {
		t.Fatalf("Routes accepted a Gateway change")
	}
	m.Translate(in)
	if _, ok := m.Routes(in, nil); !ok {
		t.Fatalf("Routes declined after a full Translate")
	}
}

// TestRoutesSpeedup prints what one route change among 1,000 costs (a route added and the
// oldest deleted, so the count stays) through Translator.Routes against Translator.Translate of the whole
// input (routes listed in no order, as the controller's cache lists them), in the same run.
func TestRoutesSpeedup(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var in *translate.Input
	serial := 0
	// step adds a route and deletes the oldest, returning both changes.
	step := func() []RouteChange {
		serial++
		r := memoRoute(1000 + serial)
		r.UID, r.Generation, r.ResourceVersion = types.UID(fmt.Sprintf("uid-new-%d", serial)), 1, "1"
		r.Name = fmt.Sprintf("new-%d", serial)
		old := in.HTTPRoutes[0]
		in.HTTPRoutes = append(in.HTTPRoutes[1:], r)
		return []RouteChange{{Kind: kindHTTP, Key: nn(r.Namespace, r.Name), Object: r}, {Kind: kindHTTP, Key: nn(old.Namespace, old.Name)}}
	}
	in = memoInput(1000)
	full := New()
	full.Translate(in)
	whole := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			step()
			shuffled := slices.Clone(in.HTTPRoutes)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			cp := *in
			cp.HTTPRoutes = shuffled
			full.Translate(&cp)
		}
	})
	in = memoInput(1000)
	m := New()
	m.Translate(in)
	inc := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if _, ok := m.Routes(in, step()); !ok {
				b.Fatal("Routes declined")
			}
		}
	})
	t.Logf("1,000 routes, one added and one deleted per change: Translator.Routes %v per change, Translator.Translate of everything %v (baseline); ratio %.3f",
		time.Duration(inc.NsPerOp()), time.Duration(whole.NsPerOp()), float64(inc.NsPerOp())/float64(whole.NsPerOp()))
}

// TestRoutesDeclinesIngressChanges: Ingresses are not routes the Translator keeps, but a
// Gateway's result serves them (translate's ingress.go); Routes must decline when they
// changed, without throwing away the kept routes.
func TestRoutesDeclinesIngressChanges(t *testing.T) {
	t.Parallel()
	in := memoInput(3)
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "ing", UID: "uid-ing", Generation: 1}}
	in.Ingresses = []*networkingv1.Ingress{ing}
	m := New()
	m.Translate(in)
	if _, ok := m.Routes(in, nil); !ok {
		t.Fatal("Routes declined with nothing changed")
	}
	ing.Generation++
	if _, ok := m.Routes(in, nil); ok {
		t.Fatal("Routes accepted an Ingress change; want a whole translation")
	}
	m.Translate(in)
	if m.Hits != len(in.HTTPRoutes) || m.Misses != 0 {
		t.Errorf("after an Ingress change: %d routes kept, %d translated; want %d kept, 0 translated", m.Hits, m.Misses, len(in.HTTPRoutes))
	}
}
