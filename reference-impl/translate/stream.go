package translate

import (
	"fmt"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Stream routes: UDPRoutes (per-flow backend choice on UDP listeners) and TLSRoutes (SNI
// routing on TLS listeners, passthrough or terminate). They attach like TCPRoutes; a
// TLSRoute's hostnames are intersected with its listener's like an HTTPRoute's.

// streamBackends resolves a stream route's backendRefs (every rule's: a stream carries nothing
// to choose a rule by, so the rules' backends share one pool). proto is the Service port
// protocol the backends must serve.
func (t *translator) streamBackends(kind, ns string, rules [][]gwv1.BackendRef, udp bool) ([]ir.Backend, *problem) {
	var backends []ir.Backend
	var refProblem *problem
	for _, brs := range rules {
		for _, br := range brs {
			b, p := t.backendProto(kind, ns, br.BackendObjectReference, weightOf(br.Weight), udp)
			backends = append(backends, b)
			if refProblem == nil {
				refProblem = p
			}
		}
	}
	return backends, refProblem
}

func (t *translator) udpRoute(r *gwv1.UDPRoute) RouteResult {
	res := RouteResult{Kind: kindUDP}
	ref := routeRef{kind: kindUDP, obj: r, parents: r.Spec.ParentRefs}
	prs := t.parents(ref)
	if len(prs) == 0 {
		return res
	}
	rules := make([][]gwv1.BackendRef, 0, len(r.Spec.Rules))
	for _, rule := range r.Spec.Rules {
		rules = append(rules, rule.BackendRefs)
	}
	backends, refProblem := t.streamBackends(kindUDP, r.Namespace, rules, true)
	res.Parents = t.routeStatus(ref, prs, nil, refProblem)
	res.Attachments = attachTo(r, prs, func(meta ir.RouteMeta) any {
		meta.Hostnames = nil
		return ir.UDPRoute{RouteMeta: meta, Backends: backends}
	})
	return res
}

func (t *translator) tlsRoute(r *gwv1.TLSRoute) RouteResult {
	res := RouteResult{Kind: kindTLS}
	ref := routeRef{kind: kindTLS, obj: r, parents: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}
	prs := t.parents(ref)
	if len(prs) == 0 {
		return res
	}
	rules := make([][]gwv1.BackendRef, 0, len(r.Spec.Rules))
	for _, rule := range r.Spec.Rules {
		rules = append(rules, rule.BackendRefs)
	}
	backends, refProblem := t.streamBackends(kindTLS, r.Namespace, rules, false)
	res.Parents = t.routeStatus(ref, prs, nil, refProblem)
	res.Attachments = attachTo(r, prs, func(meta ir.RouteMeta) any { return ir.TLSRoute{RouteMeta: meta, Backends: backends} })
	return res
}

func ptrVal[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TLSTerminateSupported says whether TLS listeners in Terminate mode are served; when false
// they are refused (Accepted False, UnsupportedValue) as the spec asks of implementations
// without the TLSRouteModeTerminate feature.
const TLSTerminateSupported = true

// UDPIdleTimeoutAnnotation on a Gateway sets its UDP listeners' flow idle timeout (a Go
// duration, 1s to 1h); without it the proxy's default (60 s) applies.
const UDPIdleTimeoutAnnotation = "gatecheck.dev/udp-idle-timeout"

// streamListener settles a TLS listener's mode: Passthrough (also when tls is absent), or
// Terminate, whose certificates the caller resolves as for HTTPS; and a UDP listener's idle
// timeout. A non-empty reason refuses the listener.
func (t *translator) streamListener(gw *gwv1.Gateway, l gwv1.Listener, ls *listenerState) (reason, msg string) {
	if l.Protocol == gwv1.UDPProtocolType {
		v, ok := gw.Annotations[UDPIdleTimeoutAnnotation]
		if !ok {
			return "", ""
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return string(gwv1.ListenerReasonUnsupportedValue), fmt.Sprintf("metadata.annotations[%s]: %q is not a duration from 1s to 1h", UDPIdleTimeoutAnnotation, v)
		}
		ls.udpIdle = ir.Duration(d)
		return "", ""
	}
	if l.TLS == nil || l.TLS.Mode == nil || *l.TLS.Mode == gwv1.TLSModePassthrough {
		ls.tlsMode = ir.TLSPassthrough
		return "", ""
	}
	if *l.TLS.Mode != gwv1.TLSModeTerminate || !TLSTerminateSupported {
		return string(gwv1.ListenerReasonUnsupportedValue), "tls.mode " + string(*l.TLS.Mode) + " is not supported on TLS listeners (want Passthrough or Terminate)"
	}
	ls.tlsMode = ir.TLSTerminate
	return "", ""
}
