package incremental

import (
	"maps"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// RouteChange names a route that was created, changed or deleted since the last translation.
type RouteChange struct {
	// Kind is HTTPRoute, GRPCRoute, TCPRoute, UDPRoute or TLSRoute.
	Kind string
	Key  types.NamespacedName
	// Object is the route as it is now (*gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TCPRoute,
	// *gwv1.UDPRoute or *gwv1.TLSRoute); nil when it was deleted.
	Object metav1.Object
}

// Routes applies changes to routes only, on top of the previous call's result, in time
// proportional to the changes instead of to all routes: no listing, sorting or re-filing of
// the unchanged routes, only the changed ones translated and moved into (or out of) their
// listeners' lists at their precedence position. in must hold every input except the routes
// (which it may omit); changes must name every route changed since the previous call.
//
// The output holds the Gateways whose listeners changed (whole results: status and snapshot)
// and the statuses of the changed routes that have a parent of ours. ok is false when an
// incremental update is not possible (no previous call to build on, or anything besides routes
// changed: Gateways, classes, Services, EndpointSlices, Namespaces, Secrets, ConfigMaps,
// ReferenceGrants, Ingresses; or BackendTLSPolicies are present, whose statuses come from every
// route); the caller then calls Translate with the whole input.
//
// The result equals what translate.Translate computes for the whole input
// (TestRoutesMatchTranslate walks random changes to check it).
func (x *Translator) Routes(in *translate.Input, changes []RouteChange) (*translate.Output, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.last
	if st == nil {
		return nil, false
	}
	x.last = nil // until this call succeeds
	env, ingress, services, ok := x.fingerprint(in)
	if !ok || env != x.env || ingress != x.ingress || !maps.Equal(services, x.services) {
		// Services and EndpointSlices are versioned per route (kept.deps): any change to them
		// needs Translate, which re-translates just the routes that use them.
		return nil, false
	}
	if len(in.BackendTLSPolicies) > 0 {
		// A route change can give a policy an ancestor, and policy statuses come from every
		// route's result.
		return nil, false
	}
	for _, c := range changes {
		switch c.Object.(type) {
		case nil, *gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TCPRoute, *gwv1.UDPRoute, *gwv1.TLSRoute:
		default:
			return nil, false
		}
		if c.Object != nil && (c.Object.GetUID() == "" || c.Object.GetGeneration() == 0) {
			// Not versioned (hand-built input): it cannot be kept.
			return nil, false
		}
	}
	x.Hits, x.Misses = 0, 0
	out := &translate.Output{
		GatewayClasses: map[string]gwv1.GatewayClassStatus{},
		Gateways:       map[types.NamespacedName]*translate.GatewayResult{},
		HTTPRoutes:     map[types.NamespacedName][]gwv1.RouteParentStatus{},
		GRPCRoutes:     map[types.NamespacedName][]gwv1.RouteParentStatus{},
		TCPRoutes:      map[types.NamespacedName][]gwv1.RouteParentStatus{},
		UDPRoutes:      map[types.NamespacedName][]gwv1.RouteParentStatus{},
		TLSRoutes:      map[types.NamespacedName][]gwv1.RouteParentStatus{},
	}
	st.owned = map[translate.ListenerKey]bool{}
	touched := map[types.NamespacedName]bool{}
	for _, c := range changes {
		id := routeID{c.Kind, c.Key}
		if old, ok := x.routes[id]; ok {
			for _, a := range old.res.Attachments {
				if !st.remove(a) {
					// The kept results and the listener lists disagree: start over.
					return nil, false
				}
				touched[a.Listener.Gateway] = true
			}
			delete(x.routes, id)
		}
		// A route named twice: its last change decides its status.
		delete(statusMap(out, c.Kind), c.Key)
		if c.Object == nil {
			continue
		}
		res := x.route(st.env, c.Kind, c.Object)
		out.SetRouteStatus(&res)
		for _, a := range res.Attachments {
			st.insert(a)
			touched[a.Listener.Gateway] = true
		}
	}
	for k := range touched {
		if res := st.env.Gateway(k, st.listeners); res != nil {
			out.Gateways[k] = res
		}
	}
	st.owned = nil
	x.last = st
	return out, true
}

// statusMap is out's map of route statuses of kind.
func statusMap(out *translate.Output, kind string) map[types.NamespacedName][]gwv1.RouteParentStatus {
	switch kind {
	case kindHTTP:
		return out.HTTPRoutes
	case kindGRPC:
		return out.GRPCRoutes
	case kindTCP:
		return out.TCPRoutes
	case kindUDP:
		return out.UDPRoutes
	case kindTLS:
		return out.TLSRoutes
	}
	return nil
}

func httpMeta(r *ir.HTTPRoute) *ir.RouteMeta { return &r.RouteMeta }
func grpcMeta(r *ir.GRPCRoute) *ir.RouteMeta { return &r.RouteMeta }
func tcpMeta(r *ir.TCPRoute) *ir.RouteMeta   { return &r.RouteMeta }
func udpMeta(r *ir.UDPRoute) *ir.RouteMeta   { return &r.RouteMeta }
func tlsMeta(r *ir.TLSRoute) *ir.RouteMeta   { return &r.RouteMeta }

// position is the index of the first route in rs that does not precede m (binary search, no
// copies of the routes).
func position[R any](rs []R, m *ir.RouteMeta, meta func(*R) *ir.RouteMeta) int {
	return sort.Search(len(rs), func(i int) bool { return translate.MetaByAge(meta(&rs[i]), m) >= 0 })
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

// own gives this call its own copies of listener k's route lists before it changes them: the
// previous ones may be part of a published snapshot.
func (st *state) own(k translate.ListenerKey) *ir.Listener {
	l := st.listeners[k]
	if st.owned[k] {
		return l
	}
	st.owned[k] = true
	if l == nil {
		l = &ir.Listener{}
	} else {
		l = &ir.Listener{HTTPRoutes: slices.Clone(l.HTTPRoutes), GRPCRoutes: slices.Clone(l.GRPCRoutes), TCPRoutes: slices.Clone(l.TCPRoutes),
			UDPRoutes: slices.Clone(l.UDPRoutes), TLSRoutes: slices.Clone(l.TLSRoutes)}
	}
	st.listeners[k] = l
	return l
}

// insert puts an attachment's route into its listener at its precedence position.
func (st *state) insert(a translate.Attachment) {
	l := st.own(a.Listener)
	switch r := a.Route.(type) {
	case ir.HTTPRoute:
		l.HTTPRoutes = insertSorted(l.HTTPRoutes, r, httpMeta)
	case ir.GRPCRoute:
		l.GRPCRoutes = insertSorted(l.GRPCRoutes, r, grpcMeta)
	case ir.TCPRoute:
		l.TCPRoutes = insertSorted(l.TCPRoutes, r, tcpMeta)
	case ir.UDPRoute:
		l.UDPRoutes = insertSorted(l.UDPRoutes, r, udpMeta)
	case ir.TLSRoute:
		l.TLSRoutes = insertSorted(l.TLSRoutes, r, tlsMeta)
	}
}

// remove takes an attachment's route out of its listener; false when it is not there.
func (st *state) remove(a translate.Attachment) bool {
	if st.listeners[a.Listener] == nil {
		return false
	}
	l := st.own(a.Listener)
	ok := false
	switch r := a.Route.(type) {
	case ir.HTTPRoute:
		l.HTTPRoutes, ok = removeSorted(l.HTTPRoutes, httpMeta(&r), httpMeta)
	case ir.GRPCRoute:
		l.GRPCRoutes, ok = removeSorted(l.GRPCRoutes, grpcMeta(&r), grpcMeta)
	case ir.TCPRoute:
		l.TCPRoutes, ok = removeSorted(l.TCPRoutes, tcpMeta(&r), tcpMeta)
	case ir.UDPRoute:
		l.UDPRoutes, ok = removeSorted(l.UDPRoutes, udpMeta(&r), udpMeta)
	case ir.TLSRoute:
		l.TLSRoutes, ok = removeSorted(l.TLSRoutes, tlsMeta(&r), tlsMeta)
	}
	return ok
}
