package translate

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// RouteChange names a route that was created, changed or deleted since the last translation.
type RouteChange struct {
	// Kind is HTTPRoute, GRPCRoute or TCPRoute.
	Kind string
	Key  types.NamespacedName
	// Object is the route as it is now (*gwv1.HTTPRoute, *gwv1.GRPCRoute or *gwv1.TCPRoute);
	// nil when it was deleted.
	Object metav1.Object
}

// Routes applies changes to routes only, on top of the previous call's result, in time
// proportional to the changes instead of to all routes: no listing, sorting or replaying of
// the unchanged routes, only the changed ones translated and moved into (or out of) their
// listeners' lists at their precedence position. in must hold every input except the routes
// (which it may omit); changes must name every route changed since the previous call.
//
// The output holds the Gateways whose listeners changed (whole results: status and snapshot)
// and the statuses of the changed routes that have a parent of ours. ok is false
// when an incremental update is not possible (no previous memoised call, or anything besides
// routes changed: Gateways, classes, Services, EndpointSlices, Namespaces, Secrets,
// ReferenceGrants); the caller then calls Translate with the whole input.
//
// The result equals what Translate computes for the whole input
// (TestMemoRoutesMatchesTranslate walks random changes to check it).
func (m *Memo) Routes(in *Input, changes []RouteChange) (*Output, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.last
	if t == nil {
		return nil, false
	}
	services := m.services
	env, ok := m.fingerprint(in)
	if !ok || env != m.env || !maps.Equal(services, m.services) {
		// Services and EndpointSlices are versioned per route (routeMemo.deps): any change to
		// them needs Translate, which re-translates just the routes that use them.
		m.last = nil
		return nil, false
	}
	if len(in.BackendTLSPolicies) > 0 {
		// A route change can give a policy an ancestor, and policy statuses come from a whole
		// translation (backendtls.go).
		m.last = nil
		return nil, false
	}
	for _, c := range changes {
		switch c.Object.(type) {
		case nil, *gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TCPRoute, *gwv1.UDPRoute, *gwv1.TLSRoute:
		default:
			m.last = nil
			return nil, false
		}
		if c.Object != nil && (c.Object.GetUID() == "" || c.Object.GetGeneration() == 0) {
			// Not versioned (hand-built input): the memo cannot track it.
			m.last = nil
			return nil, false
		}
	}
	m.Hits, m.Misses = 0, 0
	t.out = &Output{
		GatewayClasses: map[string]gwv1.GatewayClassStatus{},
		Gateways:       map[types.NamespacedName]*GatewayResult{},
		HTTPRoutes:     map[types.NamespacedName][]gwv1.RouteParentStatus{},
		GRPCRoutes:     map[types.NamespacedName][]gwv1.RouteParentStatus{},
		TCPRoutes:      map[types.NamespacedName][]gwv1.RouteParentStatus{},
		UDPRoutes:      map[types.NamespacedName][]gwv1.RouteParentStatus{},
		TLSRoutes:      map[types.NamespacedName][]gwv1.RouteParentStatus{},
	}
	t.in = in
	touched := map[*gatewayState]bool{}
	for _, gs := range t.gateways {
		for _, ls := range gs.listeners {
			ls.ordered, ls.owned = true, false
		}
	}
	for _, c := range changes {
		k := memoKey{c.Kind, c.Key}
		if old, ok := m.routes[k]; ok {
			for _, a := range old.attached {
				gs := t.gateways[a.gateway]
				if gs == nil || a.listener >= len(gs.listeners) || !gs.listeners[a.listener].remove(a.route) {
					// The memo and the listener lists disagree: start over.
					m.last = nil
					return nil, false
				}
				touched[gs] = true
			}
			delete(m.routes, k)
		}
		// A route named twice: its last change decides its status.
		switch c.Kind {
		case kindHTTP:
			delete(t.out.HTTPRoutes, c.Key)
		case kindGRPC:
			delete(t.out.GRPCRoutes, c.Key)
		case kindTCP:
			delete(t.out.TCPRoutes, c.Key)
		case kindUDP:
			delete(t.out.UDPRoutes, c.Key)
		case kindTLS:
			delete(t.out.TLSRoutes, c.Key)
		}
		switch r := c.Object.(type) {
		case *gwv1.HTTPRoute:
			t.httpRoute(r)
		case *gwv1.GRPCRoute:
			t.grpcRoute(r)
		case *gwv1.TCPRoute:
			t.tcpRoute(r)
		case *gwv1.UDPRoute:
			t.udpRoute(r)
		case *gwv1.TLSRoute:
			t.tlsRoute(r)
		}
		if rm, ok := m.routes[k]; ok {
			rm.used = m.gen
			for _, a := range rm.attached {
				touched[t.gateways[a.gateway]] = true
			}
		}
	}
	for _, gs := range t.gateways {
		for _, ls := range gs.listeners {
			ls.ordered = false
		}
	}
	for gs := range touched {
		t.finishGateway(gs)
		t.out.Gateways[nn(gs.gw.Namespace, gs.gw.Name)] = gs.res
	}
	return t.out, true
}

// metaCmp orders routes as byAge does.
func metaCmp(a, b *ir.RouteMeta) int {
	return precedence(a.CreationTimestamp, b.CreationTimestamp, a.Namespace, b.Namespace, a.Name, b.Name)
}

func httpMeta(r *ir.HTTPRoute) *ir.RouteMeta { return &r.RouteMeta }
func grpcMeta(r *ir.GRPCRoute) *ir.RouteMeta { return &r.RouteMeta }
func tcpMeta(r *ir.TCPRoute) *ir.RouteMeta   { return &r.RouteMeta }
func udpMeta(r *ir.UDPRoute) *ir.RouteMeta   { return &r.RouteMeta }
func tlsMeta(r *ir.TLSRoute) *ir.RouteMeta   { return &r.RouteMeta }

// position is the index of the first route in rs that does not precede m (binary search, no
// copies of the routes).
func position[R any](rs []R, m *ir.RouteMeta, meta func(*R) *ir.RouteMeta) int {
	return sort.Search(len(rs), func(i int) bool { return metaCmp(meta(&rs[i]), m) >= 0 })
}

// insertSorted puts r into a listener's list of one kind at its precedence position.
func insertSorted[R any](rs []R, r R, meta func(*R) *ir.RouteMeta) []R {
	return slices.Insert(rs, position(rs, meta(&r), meta), r)
}

// removeSorted takes the route with m's namespace and name (found at m's precedence position)
// out of a listener's list of one kind; false when it is not there.
func removeSorted[R any](rs []R, m *ir.RouteMeta, meta func(*R) *ir.RouteMeta) ([]R, bool) {
	i := position(rs, m, meta)
	if i == len(rs) || meta(&rs[i]).Namespace != m.Namespace || meta(&rs[i]).Name != m.Name {
		return rs, false
	}
	return slices.Delete(rs, i, i+1), true
}

// own gives the listener its own copies of its route lists before an incremental change: the
// previous ones may be part of a published snapshot.
func (ls *listenerState) own() {
	if ls.owned {
		return
	}
	ls.owned = true
	if ls.ir == nil {
		ls.ir = &ir.Listener{}
		return
	}
	ls.ir = &ir.Listener{HTTPRoutes: slices.Clone(ls.ir.HTTPRoutes), GRPCRoutes: slices.Clone(ls.ir.GRPCRoutes), TCPRoutes: slices.Clone(ls.ir.TCPRoutes),
		UDPRoutes: slices.Clone(ls.ir.UDPRoutes), TLSRoutes: slices.Clone(ls.ir.TLSRoutes)}
}

// insert puts a route at its precedence position.
func (ls *listenerState) insert(route any) {
	ls.own()
	ls.attached++
	switch r := route.(type) {
	case ir.HTTPRoute:
		ls.ir.HTTPRoutes = insertSorted(ls.ir.HTTPRoutes, r, httpMeta)
	case ir.GRPCRoute:
		ls.ir.GRPCRoutes = insertSorted(ls.ir.GRPCRoutes, r, grpcMeta)
	case ir.TCPRoute:
		ls.ir.TCPRoutes = insertSorted(ls.ir.TCPRoutes, r, tcpMeta)
	case ir.UDPRoute:
		ls.ir.UDPRoutes = insertSorted(ls.ir.UDPRoutes, r, udpMeta)
	case ir.TLSRoute:
		ls.ir.TLSRoutes = insertSorted(ls.ir.TLSRoutes, r, tlsMeta)
	default:
		panic(fmt.Sprintf("listenerState.insert: unexpected route type %T", route))
	}
}

// remove takes a route out of the listener's lists; false when it is not there.
func (ls *listenerState) remove(route any) bool {
	if ls.ir == nil {
		return false
	}
	ls.own()
	ok := false
	switch r := route.(type) {
	case ir.HTTPRoute:
		ls.ir.HTTPRoutes, ok = removeSorted(ls.ir.HTTPRoutes, httpMeta(&r), httpMeta)
	case ir.GRPCRoute:
		ls.ir.GRPCRoutes, ok = removeSorted(ls.ir.GRPCRoutes, grpcMeta(&r), grpcMeta)
	case ir.TCPRoute:
		ls.ir.TCPRoutes, ok = removeSorted(ls.ir.TCPRoutes, tcpMeta(&r), tcpMeta)
	case ir.UDPRoute:
		ls.ir.UDPRoutes, ok = removeSorted(ls.ir.UDPRoutes, udpMeta(&r), udpMeta)
	case ir.TLSRoute:
		ls.ir.TLSRoutes, ok = removeSorted(ls.ir.TLSRoutes, tlsMeta(&r), tlsMeta)
	}
	if ok {
		ls.attached--
	}
	return ok
}
