package translate

import (
	"cmp"
	"crypto/tls"
	"fmt"
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

// translator holds the indexes of one Translate call.
type translator struct {
	in         *Input
	classes    map[string]*gwv1.GatewayClass
	namespaces map[string]*corev1.Namespace
	services   map[types.NamespacedName]*corev1.Service
	slices     map[types.NamespacedName][]*discoveryv1.EndpointSlice
	secrets    map[types.NamespacedName]*corev1.Secret
	grants     map[string][]*gwv1b1.ReferenceGrant
	gateways   map[types.NamespacedName]*gatewayState
	out        *Output
	// endpointCache memoises endpoints per Service port within one Translate call.
	endpointCache map[endpointsKey][]ir.Endpoint
	// memo, when set, supplies and records route results (see Memo).
	memo *Memo
	// cur is the memo entry of the route being translated after a miss (see dependOn).
	cur *routeMemo
	// btls indexes the BackendTLSPolicies (backendtls.go), built on first use.
	btls *backendTLSIndex
}

type gatewayState struct {
	gw        *gwv1.Gateway
	listeners []*listenerState
	// conds are the Gateway's conditions before the data plane is known; finishGateway builds
	// res from them and the listeners (again after each incremental change, see Memo.Routes).
	conds []metav1.Condition
	res   *GatewayResult
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
	attached     int         // routes attached, across kinds
	ir           *ir.Listener
	// gateway and index locate the listener for the memo.
	gateway types.NamespacedName
	index   int
	// ordered: add inserts at the precedence position (Memo.Routes) instead of appending;
	// owned: the route lists are this call's copies (see own).
	ordered, owned bool
}

// Translate computes the IR and statuses for everything in in. It never fails: problems with
// user objects become conditions on those objects.
func Translate(in *Input) *Output {
	return translateWith(in, nil)
}

func translateWith(in *Input, memo *Memo) *Output {
	t := &translator{
		in:         in,
		memo:       memo,
		classes:    map[string]*gwv1.GatewayClass{},
		namespaces: map[string]*corev1.Namespace{},
		services:   map[types.NamespacedName]*corev1.Service{},
		slices:     map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
		secrets:    map[types.NamespacedName]*corev1.Secret{},
		grants:     map[string][]*gwv1b1.ReferenceGrant{},
		gateways:   map[types.NamespacedName]*gatewayState{},
		out: &Output{
			GatewayClasses: map[string]gwv1.GatewayClassStatus{},
			Gateways:       map[types.NamespacedName]*GatewayResult{},
			HTTPRoutes:     make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.HTTPRoutes)),
			GRPCRoutes:     make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.GRPCRoutes)),
			TCPRoutes:      make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.TCPRoutes)),
			UDPRoutes:      make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.UDPRoutes)),
			TLSRoutes:      make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.TLSRoutes)),
		},
	}
	for _, ns := range in.Namespaces {
		t.namespaces[ns.Name] = ns
	}
	for _, s := range in.Services {
		t.services[nn(s.Namespace, s.Name)] = s
	}
	for _, es := range in.EndpointSlices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := nn(es.Namespace, svc)
		t.slices[k] = append(t.slices[k], es)
	}
	for _, s := range in.Secrets {
		t.secrets[nn(s.Namespace, s.Name)] = s
	}
	for _, g := range in.ReferenceGrants {
		t.grants[g.Namespace] = append(t.grants[g.Namespace], g)
	}
	for _, gc := range in.GatewayClasses {
		if string(gc.Spec.ControllerName) != in.ControllerName || gc.DeletionTimestamp != nil {
			continue
		}
		t.classes[gc.Name] = gc
		t.out.GatewayClasses[gc.Name] = t.gatewayClassStatus(gc)
	}

	gws := slices.Clone(in.Gateways)
	slices.SortFunc(gws, byAge[*gwv1.Gateway])
	for _, gw := range gws {
		if _, ok := t.classes[string(gw.Spec.GatewayClassName)]; !ok || gw.DeletionTimestamp != nil {
			continue
		}
		t.gateway(gw)
	}

	httpRoutes := sortedByAge(memo, kindHTTP, in.HTTPRoutes)
	for _, r := range httpRoutes {
		t.httpRoute(r)
	}
	grpcRoutes := sortedByAge(memo, kindGRPC, in.GRPCRoutes)
	for _, r := range grpcRoutes {
		t.grpcRoute(r)
	}
	tcpRoutes := sortedByAge(memo, kindTCP, in.TCPRoutes)
	for _, r := range tcpRoutes {
		t.tcpRoute(r)
	}
	t.streamRoutes(memo) // UDPRoutes and TLSRoutes (stream.go)
	// BackendTLSPolicy statuses (backendtls.go).
	t.out.BackendTLSPolicies = t.backendTLSStatuses()

	for k, gs := range t.gateways {
		t.finishGateway(gs)
		t.out.Gateways[k] = gs.res
	}
	if memo != nil {
		memo.last = t // for Memo.Routes
	}
	return t.out
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// byAge orders objects as the Gateway API's precedence rules do: oldest first, then by
// namespace/name.
func byAge[T metav1.Object](a, b T) int {
	return precedence(a.GetCreationTimestamp().Time, b.GetCreationTimestamp().Time, a.GetNamespace(), b.GetNamespace(), a.GetName(), b.GetName())
}

// precedence is the one ordering rule behind byAge and metaCmp: creation time, then namespace,
// then name.
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
		ls := &listenerState{spec: l, gateway: nn(gw.Namespace, gw.Name), index: len(gs.listeners)}
		t.memo.presize(ls)
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

// finishGateway builds the listener statuses and the IR snapshot once all routes are attached.
func (t *translator) finishGateway(gs *gatewayState) {
	gw := gs.gw
	// A fresh result every time: an earlier one may still be in use (its status being
	// written), and ApplyDataPlane changes conditions in place.
	gs.res = &GatewayResult{Generation: gw.Generation, Status: gwv1.GatewayStatus{Conditions: slices.Clone(gs.conds)}}
	snap := &ir.Snapshot{Schema: ir.SchemaVersion, Gateway: ir.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}, Listeners: []ir.Listener{}}
	snap.BackendClientCertificate = gs.clientCert
	ports := map[int32]bool{}
	for _, ls := range gs.listeners {
		st := gwv1.ListenerStatus{
			Name:           ls.spec.Name,
			SupportedKinds: ls.kinds,
			AttachedRoutes: int32(ls.attached),
			Conditions:     slices.Clone(ls.conds),
		}
		gs.res.Status.Listeners = append(gs.res.Status.Listeners, st)
		if !ls.programmable {
			continue
		}
		l := ir.Listener{Name: string(ls.spec.Name), Port: int32(ls.spec.Port), Protocol: ir.Protocol(ls.spec.Protocol), Hostname: ptrStr(ls.spec.Hostname), TLS: ls.tls, TLSMode: ls.tlsMode, UDPIdleTimeout: ls.udpIdle}
		if ls.ir != nil {
			l.HTTPRoutes, l.GRPCRoutes, l.TCPRoutes = ls.ir.HTTPRoutes, ls.ir.GRPCRoutes, ls.ir.TCPRoutes
			l.UDPRoutes, l.TLSRoutes = ls.ir.UDPRoutes, ls.ir.TLSRoutes
		}
		snap.Listeners = append(snap.Listeners, l)
		t.memo.recordSize(ls)
		gs.res.Valid = true
		if l.Protocol == ir.ProtocolUDP {
			gs.res.UDPPorts = append(gs.res.UDPPorts, l.Port) // one listener per UDP port
			continue
		}
		ports[l.Port] = true
	}
	t.ingressListeners(gs, snap, ports) // Ingresses this Gateway serves (ingress.go)
	for p := range ports {
		gs.res.Ports = append(gs.res.Ports, p)
	}
	slices.Sort(gs.res.Ports)
	slices.Sort(gs.res.UDPPorts)
	// The snapshot is validated where it is published (only when its content changed), not
	// here: validation costs more than translation and most reconciles change nothing.
	gs.res.Snapshot = snap
	// Programmed is data-plane dependent; until ApplyDataPlane says otherwise it is Pending.
	ApplyDataPlane(gs.res, DataPlane{})
}
