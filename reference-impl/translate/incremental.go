package translate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

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
// The output holds the Gateways whose listeners changed (whole results: status, snapshot,
// encoding) and the statuses of the changed routes that have a parent of ours. ok is false
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
	for _, c := range changes {
		switch c.Object.(type) {
		case nil, *gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TCPRoute:
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
	}
	t.in = in
	t.encodeErr = nil
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
		}
		switch r := c.Object.(type) {
		case *gwv1.HTTPRoute:
			t.httpRoute(r)
		case *gwv1.GRPCRoute:
			t.grpcRoute(r)
		case *gwv1.TCPRoute:
			t.tcpRoute(r)
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
	if t.encodeErr != nil {
		m.last = nil
		return nil, false
	}
	for gs := range touched {
		t.finishGateway(gs)
		t.out.Gateways[nn(gs.gw.Namespace, gs.gw.Name)] = gs.res
	}
	return t.out, true
}

// metaCmp orders routes as byAge does.
func metaCmp(a, b *ir.RouteMeta) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

func routeMeta(route any) *ir.RouteMeta {
	switch r := route.(type) {
	case ir.HTTPRoute:
		return &r.RouteMeta
	case ir.GRPCRoute:
		return &r.RouteMeta
	case ir.TCPRoute:
		return &r.RouteMeta
	}
	panic(fmt.Sprintf("routeMeta: unexpected route type %T", route))
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
	ls.ir = &ir.Listener{HTTPRoutes: slices.Clone(ls.ir.HTTPRoutes), GRPCRoutes: slices.Clone(ls.ir.GRPCRoutes), TCPRoutes: slices.Clone(ls.ir.TCPRoutes)}
	ls.enc = listenerEnc{http: slices.Clone(ls.enc.http), grpc: slices.Clone(ls.enc.grpc), tcp: slices.Clone(ls.enc.tcp)}
}

// insert puts a route and its encoding at its precedence position.
func (ls *listenerState) insert(route any, enc []byte) {
	ls.own()
	ls.attached++
	meta := routeMeta(route)
	switch r := route.(type) {
	case ir.HTTPRoute:
		i, _ := slices.BinarySearchFunc(ls.ir.HTTPRoutes, meta, func(e ir.HTTPRoute, m *ir.RouteMeta) int { return metaCmp(&e.RouteMeta, m) })
		ls.ir.HTTPRoutes = slices.Insert(ls.ir.HTTPRoutes, i, r)
		ls.enc.http = slices.Insert(ls.enc.http, i, enc)
	case ir.GRPCRoute:
		i, _ := slices.BinarySearchFunc(ls.ir.GRPCRoutes, meta, func(e ir.GRPCRoute, m *ir.RouteMeta) int { return metaCmp(&e.RouteMeta, m) })
		ls.ir.GRPCRoutes = slices.Insert(ls.ir.GRPCRoutes, i, r)
		ls.enc.grpc = slices.Insert(ls.enc.grpc, i, enc)
	case ir.TCPRoute:
		i, _ := slices.BinarySearchFunc(ls.ir.TCPRoutes, meta, func(e ir.TCPRoute, m *ir.RouteMeta) int { return metaCmp(&e.RouteMeta, m) })
		ls.ir.TCPRoutes = slices.Insert(ls.ir.TCPRoutes, i, r)
		ls.enc.tcp = slices.Insert(ls.enc.tcp, i, enc)
	}
}

// remove takes a route (found by its namespace and name at its precedence position) out of the
// listener's lists; false when it is not there.
func (ls *listenerState) remove(route any) bool {
	if ls.ir == nil {
		return false
	}
	ls.own()
	meta := routeMeta(route)
	find := func(n int, at func(int) *ir.RouteMeta) int {
		lo, hi := 0, n
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if metaCmp(at(mid), meta) < 0 {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < n && at(lo).Namespace == meta.Namespace && at(lo).Name == meta.Name {
			return lo
		}
		return -1
	}
	switch route.(type) {
	case ir.HTTPRoute:
		i := find(len(ls.ir.HTTPRoutes), func(i int) *ir.RouteMeta { return &ls.ir.HTTPRoutes[i].RouteMeta })
		if i < 0 {
			return false
		}
		ls.ir.HTTPRoutes = slices.Delete(ls.ir.HTTPRoutes, i, i+1)
		ls.enc.http = slices.Delete(ls.enc.http, i, i+1)
	case ir.GRPCRoute:
		i := find(len(ls.ir.GRPCRoutes), func(i int) *ir.RouteMeta { return &ls.ir.GRPCRoutes[i].RouteMeta })
		if i < 0 {
			return false
		}
		ls.ir.GRPCRoutes = slices.Delete(ls.ir.GRPCRoutes, i, i+1)
		ls.enc.grpc = slices.Delete(ls.enc.grpc, i, i+1)
	case ir.TCPRoute:
		i := find(len(ls.ir.TCPRoutes), func(i int) *ir.RouteMeta { return &ls.ir.TCPRoutes[i].RouteMeta })
		if i < 0 {
			return false
		}
		ls.ir.TCPRoutes = slices.Delete(ls.ir.TCPRoutes, i, i+1)
		ls.enc.tcp = slices.Delete(ls.enc.tcp, i, i+1)
	default:
		return false
	}
	ls.attached--
	return true
}
