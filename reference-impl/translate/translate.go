package translate

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

const (
	gatewayGroup = gwv1.GroupName
	kindGateway  = "Gateway"
	kindHTTP     = "HTTPRoute"
	kindGRPC     = "GRPCRoute"
	kindTCP      = "TCPRoute"
	kindUDP      = "UDPRoute"
	kindTLS      = "TLSRoute"
	kindService  = "Service"
	kindSecret   = "Secret"
)

// Env is what a route's translation reads besides the route itself: everything in an Input
// except the routes, indexed, with every Gateway's listeners judged and every Service port's
// endpoints resolved. An Env is never modified once NewEnv returns, so route results computed
// against it stay valid while the objects it was built from are unchanged (see package
// incremental, which keeps them between translations).
type Env struct {
	in         *Input
	classes    map[string]*gwv1.GatewayClass
	namespaces map[string]*corev1.Namespace
	services   map[types.NamespacedName]*corev1.Service
	slices     map[types.NamespacedName][]*discoveryv1.EndpointSlice
	secrets    map[types.NamespacedName]*corev1.Secret
	grants     map[string][]*gwv1b1.ReferenceGrant
	gateways   map[types.NamespacedName]*gatewayState
	// classStatus is the status of every GatewayClass of ours.
	classStatus map[string]gwv1.GatewayClassStatus
	// endpointsByPort holds the ready endpoints of every Service port, shared by the backends
	// that name it (the IR is immutable once built).
	endpointsByPort map[endpointsKey][]ir.Endpoint
	// btls indexes the BackendTLSPolicies (backendtls.go).
	btls *backendTLSIndex
}

// translator is one route's translation against an Env (and NewEnv's own work): read collects
// the Services the route's backends looked up.
type translator struct {
	*Env
	read []types.NamespacedName
}

type gatewayState struct {
	gw        *gwv1.Gateway
	listeners []*listenerState
	// conds are the Gateway's conditions before the data plane is known; Gateway builds the
	// result from them and the listeners.
	conds []metav1.Condition
	// clientCert is the backend client certificate (backendtls.go); nil: none.
	clientCert *ir.Certificate
}

type listenerState struct {
	spec  gwv1.Listener
	kinds []gwv1.RouteGroupKind
	// attachable: routes may attach (Accepted and not Conflicted).
	attachable bool
	// programmable: the listener goes into the IR.
	programmable bool
	conds        []metav1.Condition
	tls          *ir.TLS
	tlsMode      ir.TLSMode  // TLS listeners (stream.go)
	udpIdle      ir.Duration // UDP listeners (stream.go)
	key          ListenerKey
}

// ListenerKey names a listener: its Gateway and its index in the Gateway's spec.listeners.
type ListenerKey struct {
	Gateway types.NamespacedName
	Index   int
}

// Listeners holds each listener's routes (only the route lists of each ir.Listener are used),
// in precedence order (MetaByAge) within each kind. A listener without routes may be absent.
type Listeners map[ListenerKey]*ir.Listener

// Translate computes the IR and statuses for everything in in. It never fails: problems with
// user objects become conditions on those objects. It is NewEnv, Env.Route for every route,
// Attach and Env.Output in a row: the pieces an incremental layer (package incremental) reuses.
func Translate(in *Input) *Output {
	e := NewEnv(in)
	results := make([]RouteResult, 0, len(in.HTTPRoutes)+len(in.GRPCRoutes)+len(in.TCPRoutes)+len(in.UDPRoutes)+len(in.TLSRoutes))
	results = appendResults(e, results, in.HTTPRoutes)
	results = appendResults(e, results, in.GRPCRoutes)
	results = appendResults(e, results, in.TCPRoutes)
	results = appendResults(e, results, in.UDPRoutes)
	results = appendResults(e, results, in.TLSRoutes)
	return e.Output(Attach(results), results)
}

// appendResults translates routes oldest first (ByAge), the order Attach needs.
func appendResults[T metav1.Object](e *Env, results []RouteResult, routes []T) []RouteResult {
	sorted := slices.Clone(routes)
	slices.SortFunc(sorted, ByAge[T])
	for _, r := range sorted {
		results = append(results, e.Route(r))
	}
	return results
}

// NewEnv indexes everything in in except the routes (which it ignores) and judges every
// Gateway of ours and its listeners.
func NewEnv(in *Input) *Env {
	// The Env keeps its own Input header, without the routes: the caller may go on changing
	// its lists (append, replace) while results built on this Env are kept.
	own := *in
	own.HTTPRoutes, own.GRPCRoutes, own.TCPRoutes, own.UDPRoutes, own.TLSRoutes = nil, nil, nil, nil, nil
	e := &Env{
		in:              &own,
		classes:         map[string]*gwv1.GatewayClass{},
		namespaces:      map[string]*corev1.Namespace{},
		services:        map[types.NamespacedName]*corev1.Service{},
		slices:          map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
		secrets:         map[types.NamespacedName]*corev1.Secret{},
		grants:          map[string][]*gwv1b1.ReferenceGrant{},
		gateways:        map[types.NamespacedName]*gatewayState{},
		classStatus:     map[string]gwv1.GatewayClassStatus{},
		endpointsByPort: map[endpointsKey][]ir.Endpoint{},
	}
	t := &translator{Env: e}
	for _, ns := range in.Namespaces {
		e.namespaces[ns.Name] = ns
	}
	for _, s := range in.Services {
		e.services[nn(s.Namespace, s.Name)] = s
	}
	for _, es := range in.EndpointSlices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := nn(es.Namespace, svc)
		e.slices[k] = append(e.slices[k], es)
	}
	for _, svc := range e.services {
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			// A port repeated with the same number and protocol: the last one wins, as in
			// backendFor's choice.
			e.endpointsByPort[endpointsKey{nn(svc.Namespace, svc.Name), sp.Port, servicePortProtocol(sp.Protocol)}] = t.computeEndpoints(svc.Namespace, svc, sp)
		}
	}
	for _, s := range in.Secrets {
		e.secrets[nn(s.Namespace, s.Name)] = s
	}
	for _, g := range in.ReferenceGrants {
		e.grants[g.Namespace] = append(e.grants[g.Namespace], g)
	}
	e.btls = t.buildBackendTLS()
	for _, gc := range in.GatewayClasses {
		if string(gc.Spec.ControllerName) != in.ControllerName || gc.DeletionTimestamp != nil {
			continue
		}
		e.classes[gc.Name] = gc
		e.classStatus[gc.Name] = t.gatewayClassStatus(gc)
	}
	for _, gw := range in.Gateways {
		if _, ok := e.classes[string(gw.Spec.GatewayClassName)]; !ok || gw.DeletionTimestamp != nil {
			continue
		}
		t.gateway(gw)
	}
	return e
}

// Attach files the routes' attachments under their listeners, in the order of results: give
// each kind's results oldest first (ByAge), as the Gateway API's precedence rules order a
// listener's routes.
func Attach(results []RouteResult) Listeners {
	counts := map[ListenerKey][5]int{}
	for i := range results {
		for _, a := range results[i].Attachments {
			n := counts[a.Listener]
			n[routeSlot(a.Route)]++
			counts[a.Listener] = n
		}
	}
	ls := make(Listeners, len(counts))
	for k, n := range counts {
		ls[k] = &ir.Listener{HTTPRoutes: make([]ir.HTTPRoute, 0, n[0]), GRPCRoutes: make([]ir.GRPCRoute, 0, n[1]), TCPRoutes: make([]ir.TCPRoute, 0, n[2]),
			UDPRoutes: make([]ir.UDPRoute, 0, n[3]), TLSRoutes: make([]ir.TLSRoute, 0, n[4])}
	}
	for i := range results {
		for _, a := range results[i].Attachments {
			l := ls[a.Listener]
			switch r := a.Route.(type) {
			case ir.HTTPRoute:
				l.HTTPRoutes = append(l.HTTPRoutes, r)
			case ir.GRPCRoute:
				l.GRPCRoutes = append(l.GRPCRoutes, r)
			case ir.TCPRoute:
				l.TCPRoutes = append(l.TCPRoutes, r)
			case ir.UDPRoute:
				l.UDPRoutes = append(l.UDPRoutes, r)
			case ir.TLSRoute:
				l.TLSRoutes = append(l.TLSRoutes, r)
			}
		}
	}
	return ls
}

// routeSlot is the index of a route's kind in Attach's counts.
func routeSlot(route any) int {
	switch route.(type) {
	case ir.HTTPRoute:
		return 0
	case ir.GRPCRoute:
		return 1
	case ir.TCPRoute:
		return 2
	case ir.UDPRoute:
		return 3
	case ir.TLSRoute:
		return 4
	}
	panic(fmt.Sprintf("translate: unexpected route type %T in an attachment", route))
}

// Output is the whole translation: every GatewayClass and Gateway of ours with the routes in
// ls, the statuses of the routes in results, and the BackendTLSPolicies' statuses.
func (e *Env) Output(ls Listeners, results []RouteResult) *Output {
	n := map[string]int{}
	for i := range results {
		n[results[i].Kind]++
	}
	out := &Output{
		GatewayClasses: make(map[string]gwv1.GatewayClassStatus, len(e.classStatus)),
		Gateways:       make(map[types.NamespacedName]*GatewayResult, len(e.gateways)),
		HTTPRoutes:     make(map[types.NamespacedName][]gwv1.RouteParentStatus, n[kindHTTP]),
		GRPCRoutes:     make(map[types.NamespacedName][]gwv1.RouteParentStatus, n[kindGRPC]),
		TCPRoutes:      make(map[types.NamespacedName][]gwv1.RouteParentStatus, n[kindTCP]),
		UDPRoutes:      make(map[types.NamespacedName][]gwv1.RouteParentStatus, n[kindUDP]),
		TLSRoutes:      make(map[types.NamespacedName][]gwv1.RouteParentStatus, n[kindTLS]),
	}
	maps.Copy(out.GatewayClasses, e.classStatus)
	for k := range e.gateways {
		out.Gateways[k] = e.Gateway(k, ls)
	}
	for i := range results {
		out.SetRouteStatus(&results[i])
	}
	out.BackendTLSPolicies = e.backendTLSStatuses(results)
	return out
}

// SetRouteStatus records r's statuses in the map of its kind; a route with no parent of ours
// has none.
func (out *Output) SetRouteStatus(r *RouteResult) {
	if r.Parents == nil {
		return
	}
	var m map[types.NamespacedName][]gwv1.RouteParentStatus
	switch r.Kind {
	case kindHTTP:
		m = out.HTTPRoutes
	case kindGRPC:
		m = out.GRPCRoutes
	case kindTCP:
		m = out.TCPRoutes
	case kindUDP:
		m = out.UDPRoutes
	case kindTLS:
		m = out.TLSRoutes
	default:
		return
	}
	m[r.Key] = r.Parents
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// ByAge orders objects as the Gateway API's precedence rules do: oldest first, then by
// namespace/name.
func ByAge[T metav1.Object](a, b T) int {
	return precedence(a.GetCreationTimestamp().Time, b.GetCreationTimestamp().Time, a.GetNamespace(), b.GetNamespace(), a.GetName(), b.GetName())
}

// MetaByAge orders routes in the IR as ByAge orders their objects.
func MetaByAge(a, b *ir.RouteMeta) int {
	return precedence(a.CreationTimestamp, b.CreationTimestamp, a.Namespace, b.Namespace, a.Name, b.Name)
}

// precedence is the one ordering rule behind ByAge and MetaByAge: creation time, then
// namespace, then name.
func precedence(at, bt time.Time, ans, bns, an, bn string) int {
	if c := at.Compare(bt); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(ans, bns), strings.Compare(an, bn))
}

func (t *translator) gatewayClassStatus(gc *gwv1.GatewayClass) gwv1.GatewayClassStatus {
	st := gwv1.GatewayClassStatus{SupportedFeatures: supportedFeatures()}
	if gc.Spec.ParametersRef != nil {
		st.Conditions = append(st.Conditions, cond(gwv1.GatewayClassConditionStatusAccepted, false, gwv1.GatewayClassReasonInvalidParameters, gc.Generation,
			fmt.Sprintf("spec.parametersRef: %s %s is not supported by this implementation", gc.Spec.ParametersRef.Kind, gc.Spec.ParametersRef.Name)))
	} else {
		st.Conditions = append(st.Conditions, cond(gwv1.GatewayClassConditionStatusAccepted, true, gwv1.GatewayClassReasonAccepted, gc.Generation, "accepted by "+t.in.ControllerName))
	}
	st.Conditions = append(st.Conditions, cond(gwv1.GatewayClassConditionStatusSupportedVersion, true, gwv1.GatewayClassReasonSupportedVersion, gc.Generation, "Gateway API v1.6"))
	return st
}

// defaultKinds are the route kinds each supported listener protocol carries.
func defaultKinds(p gwv1.ProtocolType) []string {
	switch p {
	case gwv1.HTTPProtocolType, gwv1.HTTPSProtocolType:
		return []string{kindHTTP, kindGRPC}
	case gwv1.TCPProtocolType:
		return []string{kindTCP}
	case gwv1.UDPProtocolType:
		return []string{kindUDP}
	case gwv1.TLSProtocolType:
		return []string{kindTLS}
	}
	return nil
}

func (t *translator) gateway(gw *gwv1.Gateway) {
	gen := gw.Generation
	gs := &gatewayState{gw: gw}
	t.gateways[nn(gw.Namespace, gw.Name)] = gs

	for _, l := range gw.Spec.Listeners {
		ls := &listenerState{spec: l, key: ListenerKey{Gateway: nn(gw.Namespace, gw.Name), Index: len(gs.listeners)}}
		gs.listeners = append(gs.listeners, ls)
		accepted, accReason, accMsg := true, string(gwv1.ListenerReasonAccepted), "listener accepted"
		resolved, resReason, resMsg := true, string(gwv1.ListenerReasonResolvedRefs), "all references resolved"
		kinds := defaultKinds(l.Protocol)
		if kinds == nil {
			accepted, accReason, accMsg = false, string(gwv1.ListenerReasonUnsupportedProtocol), fmt.Sprintf("protocol %q is not supported (want HTTP, HTTPS, TCP, UDP or TLS)", l.Protocol)
		}
		if l.Protocol == gwv1.HTTPSProtocolType && l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode == gwv1.TLSModePassthrough {
			accepted, accReason, accMsg = false, string(gwv1.ListenerReasonUnsupportedValue), "tls.mode Passthrough is not supported on HTTPS listeners"
			kinds = nil
		}
		// supportedKinds: the requested kinds we can serve; an unknown one is a ResolvedRefs problem.
		if kinds != nil {
			ls.kinds = []gwv1.RouteGroupKind{}
			if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
				var bad []string
				for _, k := range l.AllowedRoutes.Kinds {
					g := gatewayGroup
					if k.Group != nil {
						g = string(*k.Group)
					}
					if g == gatewayGroup && slices.Contains(kinds, string(k.Kind)) {
						ls.kinds = appendKind(ls.kinds, string(k.Kind))
					} else {
						bad = append(bad, g+"/"+string(k.Kind))
					}
				}
				if len(bad) > 0 {
					resolved, resReason, resMsg = false, string(gwv1.ListenerReasonInvalidRouteKinds), fmt.Sprintf("allowedRoutes.kinds: unsupported %s", strings.Join(bad, ", "))
				}
			} else {
				for _, k := range kinds {
					ls.kinds = appendKind(ls.kinds, k)
				}
			}
		} else {
			ls.kinds = []gwv1.RouteGroupKind{}
		}
		fatalRefs := false
		if accepted && (l.Protocol == gwv1.TLSProtocolType || l.Protocol == gwv1.UDPProtocolType) {
			// stream.go: TLS Passthrough or Terminate (certificates resolved as for HTTPS
			// below); UDP idle timeout.
			if reason, msg := t.streamListener(gw, l, ls); reason != "" {
				accepted, accReason, accMsg = false, reason, msg
			}
		}
		if accepted && (l.Protocol == gwv1.HTTPSProtocolType || ls.tlsMode == ir.TLSTerminate) {
			tlsCfg, reason, msg := t.listenerTLS(gw, l)
			if reason != "" {
				resolved, resReason, resMsg, fatalRefs = false, reason, msg, true
			} else {
				ls.tls = tlsCfg
			}
		}
		if accepted && l.Protocol == gwv1.HTTPSProtocolType {
			// Client certificate validation (frontendtls.go); a certificate problem above
			// keeps its ResolvedRefs reason.
			fv := t.frontendValidation(gw, l)
			if fv.resReason != "" && resolved {
				resolved, resReason, resMsg = false, fv.resReason, fv.resMsg
			}
			if fv.noneValid {
				accepted, accReason, accMsg = false, string(gwv1.ListenerReasonNoValidCACertificate), "no valid CA certificate for client certificate validation: "+fv.resMsg
			} else if ls.tls != nil {
				ls.tls.ClientValidation = fv.validation
			}
		}
		ls.attachable = accepted
		ls.programmable = accepted && !fatalRefs && len(ls.kinds) > 0
		ls.conds = []metav1.Condition{
			cond(gwv1.ListenerConditionAccepted, accepted, accReason, gen, accMsg),
			cond(gwv1.ListenerConditionResolvedRefs, resolved, resReason, gen, resMsg),
		}
	}
	t.conflicts(gs)
	valid := 0
	allOK := true
	for _, ls := range gs.listeners {
		if ls.attachable {
			valid++
		}
		for _, c := range ls.conds {
			conflicted := c.Type == string(gwv1.ListenerConditionConflicted)
			if conflicted == (c.Status == metav1.ConditionTrue) {
				allOK = false
			}
		}
	}
	var gwConds []metav1.Condition
	refused, refusedMsg := gatewaySpecProblem(gw) // infrastructure.go
	switch {
	case refused != "":
		gwConds = append(gwConds, cond(gwv1.GatewayConditionAccepted, false, refused, gen, refusedMsg))
		for _, ls := range gs.listeners {
			ls.programmable = false
		}
	case valid == 0:
		gwConds = append(gwConds, cond(gwv1.GatewayConditionAccepted, false, gwv1.GatewayReasonListenersNotValid, gen, "no listener is valid"))
	case !allOK:
		gwConds = append(gwConds, cond(gwv1.GatewayConditionAccepted, true, gwv1.GatewayReasonListenersNotValid, gen, "some listeners are not valid"))
	default:
		gwConds = append(gwConds, cond(gwv1.GatewayConditionAccepted, true, gwv1.GatewayReasonAccepted, gen, "gateway accepted"))
	}
	gwConds = append(gwConds, insecureFrontendCondition(gw)...) // frontendtls.go
	gs.conds = gwConds
	t.gatewayBackendTLS(gs) // backendtls.go
}

func appendKind(ks []gwv1.RouteGroupKind, kind string) []gwv1.RouteGroupKind {
	for _, k := range ks {
		if string(k.Kind) == kind {
			return ks
		}
	}
	g := gwv1.Group(gatewayGroup)
	return append(ks, gwv1.RouteGroupKind{Group: &g, Kind: gwv1.Kind(kind)})
}

// conflicts marks listeners that cannot share their port: different protocols on one port,
// more than one TCP listener on a port, or two HTTP(S) listeners with the same hostname.
func (t *translator) conflicts(gs *gatewayState) {
	gen := gs.gw.Generation
	byPort := map[gwv1.PortNumber][]*listenerState{}
	for _, ls := range gs.listeners {
		if ls.attachable {
			byPort[ls.spec.Port] = append(byPort[ls.spec.Port], ls)
		}
	}
	for _, ls := range gs.listeners {
		reason, msg := "", ""
		if ls.attachable {
			for _, o := range byPort[ls.spec.Port] {
				if o == ls {
					continue
				}
				if o.spec.Protocol != ls.spec.Protocol || ls.spec.Protocol == gwv1.TCPProtocolType || ls.spec.Protocol == gwv1.UDPProtocolType {
					reason, msg = string(gwv1.ListenerReasonProtocolConflict), fmt.Sprintf("port %d is also used by listener %q with protocol %s", ls.spec.Port, o.spec.Name, o.spec.Protocol)
					break
				}
				if ptrStr(o.spec.Hostname) == ptrStr(ls.spec.Hostname) {
					reason, msg = string(gwv1.ListenerReasonHostnameConflict), fmt.Sprintf("listener %q uses the same port %d and hostname %q", o.spec.Name, ls.spec.Port, ptrStr(ls.spec.Hostname))
				}
			}
		}
		if reason == "" {
			ls.conds = append(ls.conds, cond(gwv1.ListenerConditionConflicted, false, gwv1.ListenerReasonNoConflicts, gen, "no conflicts"))
			continue
		}
		ls.conds = append(ls.conds, cond(gwv1.ListenerConditionConflicted, true, reason, gen, msg))
		// The spec lets an implementation accept the listeners that do not conflict, provided it
		// drops every conflicting one.
		ls.conds = setCond(ls.conds, cond(gwv1.ListenerConditionAccepted, false, reason, gen, msg))
		ls.attachable, ls.programmable = false, false
	}
}

func ptrStr[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// listenerTLS resolves an HTTPS listener's certificates; a non-empty reason says why it failed.
func (t *translator) listenerTLS(gw *gwv1.Gateway, l gwv1.Listener) (*ir.TLS, string, string) {
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return nil, string(gwv1.ListenerReasonInvalidCertificateRef), "tls.certificateRefs: an HTTPS listener needs a certificate"
	}
	out := &ir.TLS{}
	for i, ref := range l.TLS.CertificateRefs {
		where := fmt.Sprintf("tls.certificateRefs[%d]", i)
		g, k := ptrStr(ref.Group), ptrStr(ref.Kind)
		if k == "" {
			k = kindSecret
		}
		if (g != "" && g != "core") || k != kindSecret {
			return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("%s: unsupported %s/%s (want core Secret)", where, g, k)
		}
		ns := gw.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		if ns != gw.Namespace && !t.granted(gatewayGroup, kindGateway, gw.Namespace, "", kindSecret, ns, string(ref.Name)) {
			return nil, string(gwv1.ListenerReasonRefNotPermitted), fmt.Sprintf("%s: Secret %s/%s is in another namespace and no ReferenceGrant allows it", where, ns, ref.Name)
		}
		s, ok := t.secrets[nn(ns, string(ref.Name))]
		if !ok {
			return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("%s: Secret %s/%s not found", where, ns, ref.Name)
		}
		cert, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("%s: Secret %s/%s does not hold a valid tls.crt and tls.key: %v", where, ns, ref.Name, err)
		}
		out.Certificates = append(out.Certificates, ir.Certificate{Name: ns + "/" + string(ref.Name), CertPEM: cert, KeyPEM: key})
	}
	return out, "", ""
}

// granted reports whether a ReferenceGrant in toNS lets (fromGroup, fromKind, fromNS) refer to
// the named object.
func (t *translator) granted(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	for _, g := range t.grants[toNS] {
		fromOK := false
		for _, f := range g.Spec.From {
			if coreGroup(string(f.Group)) == coreGroup(fromGroup) && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				fromOK = true
				break
			}
		}
		if !fromOK {
			continue
		}
		for _, to := range g.Spec.To {
			if coreGroup(string(to.Group)) == coreGroup(toGroup) && string(to.Kind) == toKind && (to.Name == nil || string(*to.Name) == toName) {
				return true
			}
		}
	}
	return false
}

func coreGroup(g string) string {
	if g == "core" {
		return ""
	}
	return g
}

// namespaceAllowed applies a listener's allowedRoutes.namespaces to a route's namespace.
func (t *translator) namespaceAllowed(gw *gwv1.Gateway, l gwv1.Listener, routeNS string) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil {
		if l.AllowedRoutes.Namespaces.From != nil {
			from = *l.AllowedRoutes.Namespaces.From
		}
		sel = l.AllowedRoutes.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return routeNS == gw.Namespace
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		ns, ok := t.namespaces[routeNS]
		if !ok {
			return false
		}
		return s.Matches(labels.Set(ns.Labels))
	}
	return false
}

// Gateway is the result of Gateway k (nil when it is not one of ours) with the routes in ls:
// its status and its IR snapshot.
func (e *Env) Gateway(k types.NamespacedName, ls Listeners) *GatewayResult {
	gs := e.gateways[k]
	if gs == nil {
		return nil
	}
	gw := gs.gw
	// A fresh result every time: an earlier one may still be in use (its status being
	// written), and ApplyDataPlane changes conditions in place.
	res := &GatewayResult{Generation: gw.Generation, Status: gwv1.GatewayStatus{Conditions: slices.Clone(gs.conds)}}
	snap := &ir.Snapshot{Schema: ir.SchemaVersion, Gateway: ir.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}, Listeners: []ir.Listener{}}
	snap.BackendClientCertificate = gs.clientCert
	ports := map[int32]bool{}
	for _, lst := range gs.listeners {
		routes := ls[lst.key]
		attached := 0
		if routes != nil {
			attached = len(routes.HTTPRoutes) + len(routes.GRPCRoutes) + len(routes.TCPRoutes) + len(routes.UDPRoutes) + len(routes.TLSRoutes)
		}
		st := gwv1.ListenerStatus{
			Name:           lst.spec.Name,
			SupportedKinds: lst.kinds,
			AttachedRoutes: int32(attached),
			Conditions:     slices.Clone(lst.conds),
		}
		res.Status.Listeners = append(res.Status.Listeners, st)
		if !lst.programmable {
			continue
		}
		l := ir.Listener{Name: string(lst.spec.Name), Port: int32(lst.spec.Port), Protocol: ir.Protocol(lst.spec.Protocol), Hostname: ptrStr(lst.spec.Hostname), TLS: lst.tls, TLSMode: lst.tlsMode, UDPIdleTimeout: lst.udpIdle}
		if routes != nil {
			l.HTTPRoutes, l.GRPCRoutes, l.TCPRoutes = routes.HTTPRoutes, routes.GRPCRoutes, routes.TCPRoutes
			l.UDPRoutes, l.TLSRoutes = routes.UDPRoutes, routes.TLSRoutes
		}
		snap.Listeners = append(snap.Listeners, l)
		res.Valid = true
		if l.Protocol == ir.ProtocolUDP {
			res.UDPPorts = append(res.UDPPorts, l.Port) // one listener per UDP port
			continue
		}
		ports[l.Port] = true
	}
	(&translator{Env: e}).ingressListeners(gs, snap, ports) // Ingresses this Gateway serves (ingress.go)
	for p := range ports {
		res.Ports = append(res.Ports, p)
	}
	slices.Sort(res.Ports)
	slices.Sort(res.UDPPorts)
	// The snapshot is validated where it is published (only when its content changed), not
	// here: validation costs more than translation and most reconciles change nothing.
	res.Snapshot = snap
	// Programmed is data-plane dependent; until ApplyDataPlane says otherwise it is Pending.
	ApplyDataPlane(res, DataPlane{})
	return res
}
