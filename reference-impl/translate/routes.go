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

// RouteResult is one route's translation against an Env.
type RouteResult struct {
	// Kind is HTTPRoute, GRPCRoute, TCPRoute, UDPRoute or TLSRoute; Key the route's namespace
	// and name.
	Kind string
	Key  types.NamespacedName
	// Parents are the route's statuses for the parentRefs that name a Gateway of ours; nil when
	// there is none (then Attachments is empty too).
	Parents []gwv1.RouteParentStatus
	// Attachments are the listeners the route attached to, with the route as each one gets it.
	Attachments []Attachment
	// Services are the Services the route looked up (whether they exist or not), each once:
	// its result holds while they are unchanged.
	Services []types.NamespacedName
	// policyUses are the BackendTLSPolicies the route's backends use, with its Gateways of ours
	// (the policies' ancestors).
	policyUses []policyUse
}

// Attachment is a route on one listener.
type Attachment struct {
	Listener ListenerKey
	// Route is ir.HTTPRoute, ir.GRPCRoute, ir.TCPRoute, ir.UDPRoute or ir.TLSRoute, its
	// hostnames intersected with the listener's.
	Route any
}

// Route translates one route (*gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TCPRoute,
// *gwv1.UDPRoute or *gwv1.TLSRoute; anything else gives a zero RouteResult) against e.
func (e *Env) Route(route metav1.Object) RouteResult {
	t := &translator{Env: e}
	var res RouteResult
	switch r := route.(type) {
	case *gwv1.HTTPRoute:
		res = t.httpRoute(r)
	case *gwv1.GRPCRoute:
		res = t.grpcRoute(r)
	case *gwv1.TCPRoute:
		res = t.tcpRoute(r)
	case *gwv1.UDPRoute:
		res = t.udpRoute(r)
	case *gwv1.TLSRoute:
		res = t.tlsRoute(r)
	default:
		return RouteResult{}
	}
	res.Key = nn(route.GetNamespace(), route.GetName())
	res.Services = t.read
	return res
}

// attachTo gives the route's attachments: one per listener it attached to, the route as made
// by mk for that listener.
func attachTo(obj metav1.Object, prs []parentResult, mk func(meta ir.RouteMeta) any) []Attachment {
	var out []Attachment
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
			meta := ir.RouteMeta{Namespace: obj.GetNamespace(), Name: obj.GetName(), CreationTimestamp: obj.GetCreationTimestamp().UTC(), Hostnames: a.hostnames}
			out = append(out, Attachment{Listener: a.ls.key, Route: mk(meta)})
		}
	}
	return out
}

// dependOn records that the route being translated looked up Service key.
func (t *translator) dependOn(key types.NamespacedName) {
	if !slices.Contains(t.read, key) {
		t.read = append(t.read, key)
	}
}

func (t *translator) httpRoute(r *gwv1.HTTPRoute) RouteResult {
	res := RouteResult{Kind: kindHTTP}
	ref := routeRef{kind: kindHTTP, obj: r, parents: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}
	res.policyUses = t.httpPolicyUses(r) // backendtls.go
	prs := t.parents(ref)
	if len(prs) == 0 {
		return res
	}
	rules, routeProblem, refProblem := t.httpRules(r)
	res.Parents = t.routeStatus(ref, prs, routeProblem, refProblem)
	if routeProblem != nil {
		return res
	}
	res.Attachments = attachTo(r, prs, func(meta ir.RouteMeta) any { return ir.HTTPRoute{RouteMeta: meta, Rules: rules} })
	return res
}

func (t *translator) grpcRoute(r *gwv1.GRPCRoute) RouteResult {
	res := RouteResult{Kind: kindGRPC}
	ref := routeRef{kind: kindGRPC, obj: r, parents: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}
	res.policyUses = t.grpcPolicyUses(r) // backendtls.go
	prs := t.parents(ref)
	if len(prs) == 0 {
		return res
	}
	rules, routeProblem, refProblem := t.grpcRules(r)
	res.Parents = t.routeStatus(ref, prs, routeProblem, refProblem)
	if routeProblem != nil {
		return res
	}
	res.Attachments = attachTo(r, prs, func(meta ir.RouteMeta) any { return ir.GRPCRoute{RouteMeta: meta, Rules: rules} })
	return res
}

func (t *translator) tcpRoute(r *gwv1.TCPRoute) RouteResult {
	res := RouteResult{Kind: kindTCP}
	ref := routeRef{kind: kindTCP, obj: r, parents: r.Spec.ParentRefs}
	prs := t.parents(ref)
	if len(prs) == 0 {
		return res
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
	res.Parents = t.routeStatus(ref, prs, nil, refProblem)
	res.Attachments = attachTo(r, prs, func(meta ir.RouteMeta) any {
		meta.Hostnames = nil
		return ir.TCPRoute{RouteMeta: meta, Backends: backends}
	})
	return res
}

func weightOf(w *int32) int32 {
	if w == nil {
		return 1
	}
	return *w
}
