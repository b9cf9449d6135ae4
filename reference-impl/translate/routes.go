package translate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// routeRef is what attachment needs to know about a route of any kind.
type routeRef struct {
	kind      string
	obj       metav1.Object
	parents   []gwv1.ParentReference
	hostnames []gwv1.Hostname
}

// attachment is one listener a route attached to.
type attachment struct {
	ls        *listenerState
	hostnames []string
}

// parentResult is the outcome for one parentRef that names a Gateway we own.
type parentResult struct {
	ref         gwv1.ParentReference
	accepted    bool
	reason      gwv1.RouteConditionReason
	msg         string
	attachments []attachment
}

// problem is a route condition other than success: which condition, why, and what to say.
type problem struct {
	reason gwv1.RouteConditionReason
	msg    string
}

func (t *translator) parents(r routeRef) []parentResult {
	var out []parentResult
	for _, ref := range r.parents {
		if g := ptrStr(ref.Group); ref.Group != nil && g != gatewayGroup {
			continue
		}
		if k := ptrStr(ref.Kind); ref.Kind != nil && k != kindGateway {
			continue
		}
		ns := r.obj.GetNamespace()
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		gs, ok := t.gateways[nn(ns, string(ref.Name))]
		if !ok {
			// Not a Gateway of ours (or not one at all): another controller may own it.
			continue
		}
		out = append(out, t.parent(r, ref, gs))
	}
	return out
}

func (t *translator) parent(r routeRef, ref gwv1.ParentReference, gs *gatewayState) parentResult {
	pr := parentResult{ref: ref}
	cands := gs.listeners
	if ref.SectionName != nil {
		cands = slices.DeleteFunc(slices.Clone(cands), func(ls *listenerState) bool { return ls.spec.Name != *ref.SectionName })
		if len(cands) == 0 {
			pr.reason, pr.msg = gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("Gateway %s/%s has no listener named %q", gs.gw.Namespace, gs.gw.Name, *ref.SectionName)
			return pr
		}
	}
	if ref.Port != nil {
		cands = slices.DeleteFunc(slices.Clone(cands), func(ls *listenerState) bool { return ls.spec.Port != *ref.Port })
		if len(cands) == 0 {
			pr.reason, pr.msg = gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("Gateway %s/%s has no matching listener on port %d", gs.gw.Namespace, gs.gw.Name, *ref.Port)
			return pr
		}
	}
	var allowed []*listenerState
	for _, ls := range cands {
		if !ls.attachable || !slices.ContainsFunc(ls.kinds, func(k gwv1.RouteGroupKind) bool { return string(k.Kind) == r.kind }) {
			continue
		}
		if !t.namespaceAllowed(gs.gw, ls.spec, r.obj.GetNamespace()) {
			continue
		}
		allowed = append(allowed, ls)
	}
	if len(allowed) == 0 {
		pr.reason, pr.msg = gwv1.RouteReasonNotAllowedByListeners, fmt.Sprintf("no listener of Gateway %s/%s allows a %s from namespace %s", gs.gw.Namespace, gs.gw.Name, r.kind, r.obj.GetNamespace())
		return pr
	}
	for _, ls := range allowed {
		if r.kind == kindTCP || r.kind == kindUDP {
			pr.attachments = append(pr.attachments, attachment{ls: ls})
			continue
		}
		hs, ok := intersectHostnames(ptrStr(ls.spec.Hostname), r.hostnames)
		if !ok {
			continue
		}
		pr.attachments = append(pr.attachments, attachment{ls: ls, hostnames: hs})
	}
	if len(pr.attachments) == 0 {
		pr.reason, pr.msg = gwv1.RouteReasonNoMatchingListenerHostname, fmt.Sprintf("no hostname of the route matches a listener of Gateway %s/%s", gs.gw.Namespace, gs.gw.Name)
		return pr
	}
	pr.accepted, pr.reason, pr.msg = true, gwv1.RouteReasonAccepted, "accepted"
	return pr
}

// intersectHostnames returns the route hostnames that fall within the listener hostname
// (narrowed to the more specific of the two); nil with ok means "the listener's hostname".
func intersectHostnames(listener string, route []gwv1.Hostname) ([]string, bool) {
	if len(route) == 0 {
		return nil, true
	}
	var out []string
	for _, h := range route {
		if m, ok := intersectHostname(listener, string(h)); ok && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, len(out) > 0
}

func intersectHostname(l, r string) (string, bool) {
	switch {
	case l == "" || l == r:
		return r, true
	case strings.HasPrefix(l, "*.") && !strings.HasPrefix(r, "*."):
		return r, strings.HasSuffix(r, l[1:])
	case !strings.HasPrefix(l, "*.") && strings.HasPrefix(r, "*."):
		return l, strings.HasSuffix(l, r[1:])
	case strings.HasPrefix(l, "*.") && strings.HasPrefix(r, "*."):
		if strings.HasSuffix(r, l[1:]) {
			return r, true
		}
		if strings.HasSuffix(l, r[1:]) {
			return l, true
		}
	}
	return "", false
}

// routeStatus turns parent results into statuses; routeProblem, when set, rejects the route
// everywhere (Accepted False), refProblem sets ResolvedRefs False.
func (t *translator) routeStatus(r routeRef, prs []parentResult, routeProblem, refProblem *problem) []gwv1.RouteParentStatus {
	gen := r.obj.GetGeneration()
	var out []gwv1.RouteParentStatus
	for _, pr := range prs {
		acc := cond(gwv1.RouteConditionAccepted, pr.accepted, pr.reason, gen, pr.msg)
		if pr.accepted && routeProblem != nil {
			acc = cond(gwv1.RouteConditionAccepted, false, routeProblem.reason, gen, routeProblem.msg)
		}
		res := cond(gwv1.RouteConditionResolvedRefs, true, gwv1.RouteReasonResolvedRefs, gen, "all references resolved")
		if refProblem != nil {
			res = cond(gwv1.RouteConditionResolvedRefs, false, refProblem.reason, gen, refProblem.msg)
		}
		out = append(out, gwv1.RouteParentStatus{
			ParentRef:      pr.ref,
			ControllerName: gwv1.GatewayController(t.in.ControllerName),
			Conditions:     []metav1.Condition{acc, res},
		})
	}
	return out
}

// attachTo records the route on each listener it attached to and hands each listener to add,
// which appends the route to the listener's IR.
func attachTo(obj metav1.Object, prs []parentResult, add func(ls *listenerState, meta ir.RouteMeta)) {
	var seen []*listenerState
	for _, pr := range prs {
		if !pr.accepted {
			continue
		}
		for _, a := range pr.attachments {
			if slices.Contains(seen, a.ls) {
				// Two parentRefs (e.g. by port and by section) landing on one listener.
				continue
			}
			seen = append(seen, a.ls)
			add(a.ls, ir.RouteMeta{Namespace: obj.GetNamespace(), Name: obj.GetName(), CreationTimestamp: obj.GetCreationTimestamp().UTC(), Hostnames: a.hostnames})
		}
	}
}

// lookup returns the route's memo entry (nil without a memo) and whether it holds the result.
// On a miss, the Services the route's backends name are recorded in the entry (dependOn).
func (t *translator) lookup(kind string, obj metav1.Object) (*routeMemo, bool) {
	t.cur = nil
	if t.memo == nil {
		return nil, false
	}
	rm, hit := t.memo.lookup(kind, obj)
	if hit && !t.replayable(rm) {
		rm.status, rm.attached, rm.deps, hit = nil, nil, nil, false
	}
	if !hit {
		t.cur = rm
	}
	return rm, hit
}

// dependOn records that the route being translated looked up Service key.
func (t *translator) dependOn(key types.NamespacedName) {
	if t.cur == nil || slices.ContainsFunc(t.cur.deps, func(d serviceDep) bool { return d.key == key }) {
		return
	}
	t.cur.deps = append(t.cur.deps, serviceDep{key: key, version: t.memo.services[key]})
}

// replayable checks that every listener a memoised route attached to still exists (it must,
// as the fingerprint is unchanged; this keeps a mistake there from panicking).
func (t *translator) replayable(rm *routeMemo) bool {
	for _, a := range rm.attached {
		gs, ok := t.gateways[a.gateway]
		if !ok || a.listener >= len(gs.listeners) {
			return false
		}
	}
	return true
}

// replay applies a memoised route result: its statuses and its attachments.
func (t *translator) replay(obj metav1.Object, rm *routeMemo, statuses map[types.NamespacedName][]gwv1.RouteParentStatus) {
	if rm.status == nil {
		return
	}
	statuses[nn(obj.GetNamespace(), obj.GetName())] = rm.status
	for _, a := range rm.attached {
		t.gateways[a.gateway].listeners[a.listener].add(a.route)
	}
}

// attach adds a freshly translated route to a listener and records it in rm (when not nil).
func (t *translator) attach(rm *routeMemo, ls *listenerState, route any) {
	ls.add(route)
	if rm != nil {
		rm.attached = append(rm.attached, memoAttach{gateway: ls.gateway, listener: ls.index, route: route})
	}
}

// add appends a route (ir.HTTPRoute, ir.GRPCRoute, ir.TCPRoute, ir.UDPRoute or ir.TLSRoute)
// to the listener's IR.
func (ls *listenerState) add(route any) {
	if ls.ordered {
		ls.insert(route)
		return
	}
	ls.attached++
	if ls.ir == nil {
		ls.ir = &ir.Listener{}
	}
	switch r := route.(type) {
	case ir.HTTPRoute:
		ls.ir.HTTPRoutes = append(ls.ir.HTTPRoutes, r)
	case ir.GRPCRoute:
		ls.ir.GRPCRoutes = append(ls.ir.GRPCRoutes, r)
	case ir.TCPRoute:
		ls.ir.TCPRoutes = append(ls.ir.TCPRoutes, r)
	case ir.UDPRoute:
		ls.ir.UDPRoutes = append(ls.ir.UDPRoutes, r)
	case ir.TLSRoute:
		ls.ir.TLSRoutes = append(ls.ir.TLSRoutes, r)
	default:
		panic(fmt.Sprintf("listenerState.add: unexpected route type %T", route))
	}
}

func (t *translator) httpRoute(r *gwv1.HTTPRoute) {
	rm, hit := t.lookup(kindHTTP, r)
	if hit {
		t.replay(r, rm, t.out.HTTPRoutes)
		return
	}
	ref := routeRef{kind: kindHTTP, obj: r, parents: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}
	prs := t.parents(ref)
	if len(prs) == 0 {
		return
	}
	rules, routeProblem, refProblem := t.httpRules(r)
	st := t.routeStatus(ref, prs, routeProblem, refProblem)
	t.out.HTTPRoutes[nn(r.Namespace, r.Name)] = st
	if rm != nil {
		rm.status = st
	}
	if routeProblem != nil {
		return
	}
	attachTo(r, prs, func(ls *listenerState, meta ir.RouteMeta) {
		t.attach(rm, ls, ir.HTTPRoute{RouteMeta: meta, Rules: rules})
	})
}

func (t *translator) grpcRoute(r *gwv1.GRPCRoute) {
	rm, hit := t.lookup(kindGRPC, r)
	if hit {
		t.replay(r, rm, t.out.GRPCRoutes)
		return
	}
	ref := routeRef{kind: kindGRPC, obj: r, parents: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}
	prs := t.parents(ref)
	if len(prs) == 0 {
		return
	}
	rules, routeProblem, refProblem := t.grpcRules(r)
	st := t.routeStatus(ref, prs, routeProblem, refProblem)
	t.out.GRPCRoutes[nn(r.Namespace, r.Name)] = st
	if rm != nil {
		rm.status = st
	}
	if routeProblem != nil {
		return
	}
	attachTo(r, prs, func(ls *listenerState, meta ir.RouteMeta) {
		t.attach(rm, ls, ir.GRPCRoute{RouteMeta: meta, Rules: rules})
	})
}

func (t *translator) tcpRoute(r *gwv1.TCPRoute) {
	rm, hit := t.lookup(kindTCP, r)
	if hit {
		t.replay(r, rm, t.out.TCPRoutes)
		return
	}
	ref := routeRef{kind: kindTCP, obj: r, parents: r.Spec.ParentRefs}
	prs := t.parents(ref)
	if len(prs) == 0 {
		return
	}
	var backends []ir.Backend
	var refProblem *problem
	// A TCPRoute carries one rule in practice; several rules' backends share one pool.
	for _, rule := range r.Spec.Rules {
		for _, br := range rule.BackendRefs {
			b, p := t.backend(kindTCP, r.Namespace, br.BackendObjectReference, weightOf(br.Weight), false)
			backends = append(backends, b)
			if refProblem == nil {
				refProblem = p
			}
		}
	}
	st := t.routeStatus(ref, prs, nil, refProblem)
	t.out.TCPRoutes[nn(r.Namespace, r.Name)] = st
	if rm != nil {
		rm.status = st
	}
	attachTo(r, prs, func(ls *listenerState, meta ir.RouteMeta) {
		meta.Hostnames = nil
		t.attach(rm, ls, ir.TCPRoute{RouteMeta: meta, Backends: backends})
	})
}

func weightOf(w *int32) int32 {
	if w == nil {
		return 1
	}
	return *w
}
