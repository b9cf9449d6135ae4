package translate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// appProtocolH2C is the Service appProtocol that selects HTTP/2 cleartext to the backend.
const appProtocolH2C = "kubernetes.io/h2c"

// backend resolves one backendRef. An unresolved reference still yields a Backend (weight, no
// endpoints, Invalid set) so its share of requests fails as the spec requires.
func (t *translator) backend(fromKind, fromNS string, ref gwv1.BackendObjectReference, weight int32, grpc bool) (ir.Backend, *problem) {
	return t.backendFor(fromKind, fromNS, ref, weight, grpc, corev1.ProtocolTCP)
}

// backendProto resolves a stream route's backendRef to a Service port of protocol UDP (udp)
// or TCP.
func (t *translator) backendProto(fromKind, fromNS string, ref gwv1.BackendObjectReference, weight int32, udp bool) (ir.Backend, *problem) {
	if udp {
		return t.backendFor(fromKind, fromNS, ref, weight, false, corev1.ProtocolUDP)
	}
	return t.backendFor(fromKind, fromNS, ref, weight, false, corev1.ProtocolTCP)
}

// servicePortProtocol is a Service port's protocol; empty means TCP.
func servicePortProtocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func (t *translator) backendFor(fromKind, fromNS string, ref gwv1.BackendObjectReference, weight int32, grpc bool, proto corev1.Protocol) (ir.Backend, *problem) {
	ns := fromNS
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	port := int32(0)
	if ref.Port != nil {
		port = int32(*ref.Port)
	}
	b := ir.Backend{Name: fmt.Sprintf("%s/%s:%d", ns, ref.Name, port), Weight: weight}
	if grpc {
		b.Protocol = ir.BackendH2C
	}
	fail := func(reason gwv1.RouteConditionReason, msg string) (ir.Backend, *problem) {
		b.Invalid = msg
		return b, &problem{reason: reason, msg: msg}
	}
	g, k := ptrStr(ref.Group), ptrStr(ref.Kind)
	if k == "" {
		k = kindService
	}
	if coreGroup(g) != "" || k != kindService {
		return fail(gwv1.RouteReasonInvalidKind, fmt.Sprintf("backendRef %s: unsupported kind %s (group %q); want a core Service", ref.Name, k, g))
	}
	if ns != fromNS && !t.granted(gatewayGroup, fromKind, fromNS, "", kindService, ns, string(ref.Name)) {
		return fail(gwv1.RouteReasonRefNotPermitted, fmt.Sprintf("backendRef Service %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name))
	}
	if ref.Port == nil {
		return fail(gwv1.RouteReasonUnsupportedValue, fmt.Sprintf("backendRef Service %s/%s: port is required", ns, ref.Name))
	}
	t.dependOn(nn(ns, string(ref.Name)))
	svc, ok := t.services[nn(ns, string(ref.Name))]
	if !ok {
		return fail(gwv1.RouteReasonBackendNotFound, fmt.Sprintf("backendRef Service %s/%s not found", ns, ref.Name))
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port && servicePortProtocol(svc.Spec.Ports[i].Protocol) == proto {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		kind := ""
		if proto != corev1.ProtocolTCP {
			kind = string(proto) + " "
		}
		return fail(gwv1.RouteReasonBackendNotFound, fmt.Sprintf("backendRef Service %s/%s has no %sport %d", ns, ref.Name, kind, port))
	}
	if sp.AppProtocol != nil && *sp.AppProtocol == appProtocolH2C {
		b.Protocol = ir.BackendH2C
	}
	b.Endpoints = t.endpoints(ns, svc, sp)
	if fromKind == kindHTTP || fromKind == kindGRPC {
		t.applyBackendTLS(&b, ns, svc, sp) // backendtls.go
	}
	return b, nil
}

// endpoints are the ready addresses behind a Service port (resolved by NewEnv).
func (t *translator) endpoints(ns string, svc *corev1.Service, sp *corev1.ServicePort) []ir.Endpoint {
	return t.endpointsByPort[endpointsKey{nn(ns, svc.Name), sp.Port, servicePortProtocol(sp.Protocol)}]
}

type endpointsKey struct {
	svc   types.NamespacedName
	port  int32
	proto corev1.Protocol
}

func (t *translator) computeEndpoints(ns string, svc *corev1.Service, sp *corev1.ServicePort) []ir.Endpoint {
	var out []ir.Endpoint
	seen := map[ir.Endpoint]bool{}
	for _, es := range t.slices[nn(ns, svc.Name)] {
		var port int32
		for _, p := range es.Ports {
			if ptrStr(p.Name) == sp.Name && p.Port != nil && servicePortProtocol(ptrVal(p.Protocol)) == servicePortProtocol(sp.Protocol) {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range es.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				ep := ir.Endpoint{Address: a, Port: port}
				if !seen[ep] {
					seen[ep] = true
					out = append(out, ep)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b ir.Endpoint) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	})
	return out
}

// collector keeps the first problem of each kind found while translating a route's rules.
type collector struct {
	route, refs *problem
}

func (c *collector) ref(p *problem) {
	if p != nil && c.refs == nil {
		c.refs = p
	}
}

func (t *translator) httpRules(r *gwv1.HTTPRoute) ([]ir.HTTPRule, *problem, *problem) {
	var c collector
	var rules []ir.HTTPRule
	for i, rule := range r.Spec.Rules {
		out := ir.HTTPRule{Index: i, Name: string(ptrVal(rule.Name))}
		for _, m := range rule.Matches {
			out.Matches = append(out.Matches, httpMatch(m))
		}
		var fail string
		out.Filters, fail = t.httpFilters(&c, kindHTTP, r.Namespace, rule.Filters)
		for _, br := range rule.BackendRefs {
			b, p := t.backend(kindHTTP, r.Namespace, br.BackendObjectReference, weightOf(br.Weight), false)
			c.ref(p)
			var bfail string
			b.Filters, bfail = t.httpFilters(&c, kindHTTP, r.Namespace, br.Filters)
			if bfail != "" && b.Invalid == "" {
				b.Invalid, b.Endpoints, b.Filters = bfail, nil, nil
			}
			out.Backends = append(out.Backends, b)
		}
		if fail != "" {
			// A filter we cannot apply must not be skipped: the rule answers 500 instead.
			out.Filters = nil
			out.Backends = []ir.Backend{{Name: "unresolved-filter", Weight: 1, Invalid: fail}}
		}
		if rule.Timeouts != nil {
			to, p := timeouts(rule.Timeouts)
			if p != nil && c.route == nil {
				c.route = p
			}
			out.Timeouts = to
		}
		if rule.Retry != nil {
			rt, p := retry(rule.Retry)
			if p != nil && c.route == nil {
				c.route = p
			}
			out.Retry = rt
		}
		rules = append(rules, out)
	}
	return rules, c.route, c.refs
}

// defaultRetryAttempts is how often a request is retried when retry.attempts is not given
// (the spec leaves it to the implementation).
const defaultRetryAttempts = 1

// retry converts a rule's retry policy; codes outside 400-599 and a malformed backoff make
// the route not Accepted (UnsupportedValue) and the rule is used without retries.
func retry(in *gwv1.HTTPRouteRetry) (*ir.Retry, *problem) {
	out := &ir.Retry{Attempts: defaultRetryAttempts}
	if in.Attempts != nil {
		out.Attempts = *in.Attempts
	}
	if out.Attempts < 1 || out.Attempts > 100 {
		return nil, &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: fmt.Sprintf("retry.attempts: %d is not supported (want 1 to 100)", out.Attempts)}
	}
	for i, c := range in.Codes {
		if c < 400 || c > 599 {
			return nil, &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: fmt.Sprintf("retry.codes[%d]: %d is not supported (want 400 to 599)", i, c)}
		}
		out.Codes = append(out.Codes, int(c))
	}
	if in.Backoff != nil {
		d, err := time.ParseDuration(string(*in.Backoff))
		if err != nil || d < 0 {
			return nil, &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: fmt.Sprintf("retry.backoff: %q is not a valid duration", *in.Backoff)}
		}
		out.Backoff = ir.Duration(d)
	}
	return out, nil
}

func timeouts(in *gwv1.HTTPRouteTimeouts) (*ir.Timeouts, *problem) {
	var out ir.Timeouts
	for _, x := range []struct {
		field string
		v     *gwv1.Duration
		dst   *ir.Duration
	}{{"request", in.Request, &out.Request}, {"backendRequest", in.BackendRequest, &out.BackendRequest}} {
		if x.v == nil {
			continue
		}
		d, err := time.ParseDuration(string(*x.v))
		if err != nil || d < 0 {
			return nil, &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: fmt.Sprintf("timeouts.%s: %q is not a valid duration", x.field, *x.v)}
		}
		*x.dst = ir.Duration(d)
	}
	if out.Request > 0 && out.BackendRequest > out.Request {
		return nil, &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: "timeouts.backendRequest must not exceed timeouts.request"}
	}
	if out == (ir.Timeouts{}) {
		return nil, nil
	}
	return &out, nil
}

func httpMatch(m gwv1.HTTPRouteMatch) ir.HTTPMatch {
	var out ir.HTTPMatch
	if m.Path != nil {
		typ := gwv1.PathMatchPathPrefix
		if m.Path.Type != nil {
			typ = *m.Path.Type
		}
		v := "/"
		if m.Path.Value != nil {
			v = *m.Path.Value
		}
		out.Path = &ir.PathMatch{Type: ir.MatchType(typ), Value: v}
	}
	for _, h := range m.Headers {
		typ := gwv1.HeaderMatchExact
		if h.Type != nil {
			typ = *h.Type
		}
		out.Headers = append(out.Headers, ir.HeaderMatch{Type: ir.MatchType(typ), Name: string(h.Name), Value: h.Value})
	}
	for _, q := range m.QueryParams {
		typ := gwv1.QueryParamMatchExact
		if q.Type != nil {
			typ = *q.Type
		}
		out.QueryParams = append(out.QueryParams, ir.HeaderMatch{Type: ir.MatchType(typ), Name: string(q.Name), Value: q.Value})
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out
}

func corsFilter(f *gwv1.HTTPCORSFilter) *ir.CORS {
	out := &ir.CORS{AllowCredentials: ptrVal(f.AllowCredentials), MaxAge: f.MaxAge}
	for _, o := range f.AllowOrigins {
		out.AllowOrigins = append(out.AllowOrigins, string(o))
	}
	for _, m := range f.AllowMethods {
		out.AllowMethods = append(out.AllowMethods, string(m))
	}
	for _, h := range f.AllowHeaders {
		out.AllowHeaders = append(out.AllowHeaders, string(h))
	}
	for _, h := range f.ExposeHeaders {
		out.ExposeHeaders = append(out.ExposeHeaders, string(h))
	}
	return out
}

func headerModifier(f *gwv1.HTTPHeaderFilter) *ir.HeaderModifier {
	out := &ir.HeaderModifier{Remove: f.Remove}
	for _, h := range f.Set {
		out.Set = append(out.Set, ir.Header{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		out.Add = append(out.Add, ir.Header{Name: string(h.Name), Value: h.Value})
	}
	return out
}

func pathModifier(p *gwv1.HTTPPathModifier) *ir.PathModifier {
	if p == nil {
		return nil
	}
	return &ir.PathModifier{Type: ir.PathModifierType(p.Type), ReplaceFullPath: ptrStr(p.ReplaceFullPath), ReplacePrefixMatch: ptrStr(p.ReplacePrefixMatch)}
}

// httpFilters converts filters; a non-empty second result means the rule must fail requests
// (an extensionRef we cannot resolve).
func (t *translator) httpFilters(c *collector, fromKind, ns string, fs []gwv1.HTTPRouteFilter) ([]ir.Filter, string) {
	var out []ir.Filter
	fail := ""
	for i, f := range fs {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			if f.RequestHeaderModifier != nil {
				out = append(out, ir.Filter{Type: ir.FilterRequestHeaderModifier, RequestHeaderModifier: headerModifier(f.RequestHeaderModifier)})
			}
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			if f.ResponseHeaderModifier != nil {
				out = append(out, ir.Filter{Type: ir.FilterResponseHeaderModifier, ResponseHeaderModifier: headerModifier(f.ResponseHeaderModifier)})
			}
		case gwv1.HTTPRouteFilterRequestRedirect:
			if rr := f.RequestRedirect; rr != nil {
				red := &ir.Redirect{Scheme: rr.Scheme, Path: pathModifier(rr.Path)}
				if rr.Hostname != nil {
					h := string(*rr.Hostname)
					red.Hostname = &h
				}
				if rr.Port != nil {
					p := int32(*rr.Port)
					red.Port = &p
				}
				if rr.StatusCode != nil {
					red.StatusCode = *rr.StatusCode
				}
				out = append(out, ir.Filter{Type: ir.FilterRequestRedirect, RequestRedirect: red})
			}
		case gwv1.HTTPRouteFilterURLRewrite:
			if uw := f.URLRewrite; uw != nil {
				rw := &ir.URLRewrite{Path: pathModifier(uw.Path)}
				if uw.Hostname != nil {
					h := string(*uw.Hostname)
					rw.Hostname = &h
				}
				out = append(out, ir.Filter{Type: ir.FilterURLRewrite, URLRewrite: rw})
			}
		case gwv1.HTTPRouteFilterRequestMirror:
			if m := f.RequestMirror; m != nil {
				out = append(out, t.mirror(c, fromKind, ns, m, false))
			}
		case gwv1.HTTPRouteFilterCORS:
			if f.CORS != nil {
				out = append(out, ir.Filter{Type: ir.FilterCORS, CORS: corsFilter(f.CORS)})
			}
		case gwv1.HTTPRouteFilterExtensionRef:
			msg := fmt.Sprintf("filters[%d]: extensionRef %s is not supported by this implementation", i, extName(f.ExtensionRef))
			c.ref(&problem{reason: gwv1.RouteReasonInvalidKind, msg: msg})
			fail = msg
		default:
			msg := fmt.Sprintf("filters[%d]: filter type %s is not supported by this implementation", i, f.Type)
			if c.route == nil {
				c.route = &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: msg}
			}
			fail = msg
		}
	}
	return out, fail
}

func extName(r *gwv1.LocalObjectReference) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s/%s %s", r.Group, r.Kind, r.Name)
}

func (t *translator) mirror(c *collector, fromKind, ns string, m *gwv1.HTTPRequestMirrorFilter, grpc bool) ir.Filter {
	b, p := t.backend(fromKind, ns, m.BackendRef, 1, grpc)
	c.ref(p)
	pct := 100.0
	switch {
	case m.Percent != nil:
		pct = float64(*m.Percent)
	case m.Fraction != nil:
		den := int32(100)
		if m.Fraction.Denominator != nil {
			den = *m.Fraction.Denominator
		}
		if den > 0 {
			pct = 100 * float64(m.Fraction.Numerator) / float64(den)
		}
	}
	return ir.Filter{Type: ir.FilterRequestMirror, RequestMirror: &ir.Mirror{Backend: b, Percent: pct}}
}

func (t *translator) grpcRules(r *gwv1.GRPCRoute) ([]ir.GRPCRule, *problem, *problem) {
	var c collector
	var rules []ir.GRPCRule
	for i, rule := range r.Spec.Rules {
		out := ir.GRPCRule{Index: i, Name: string(ptrVal(rule.Name))}
		for _, m := range rule.Matches {
			var gm ir.GRPCMatch
			if m.Method != nil {
				typ := gwv1.GRPCMethodMatchExact
				if m.Method.Type != nil {
					typ = *m.Method.Type
				}
				gm.Method = &ir.GRPCMethodMatch{Type: ir.MatchType(typ), Service: ptrStr(m.Method.Service), Method: ptrStr(m.Method.Method)}
			}
			for _, h := range m.Headers {
				typ := gwv1.GRPCHeaderMatchExact
				if h.Type != nil {
					typ = *h.Type
				}
				gm.Headers = append(gm.Headers, ir.HeaderMatch{Type: ir.MatchType(typ), Name: string(h.Name), Value: h.Value})
			}
			out.Matches = append(out.Matches, gm)
		}
		var fail string
		out.Filters, fail = t.grpcFilters(&c, r.Namespace, rule.Filters)
		for _, br := range rule.BackendRefs {
			b, p := t.backend(kindGRPC, r.Namespace, br.BackendObjectReference, weightOf(br.Weight), true)
			c.ref(p)
			var bfail string
			b.Filters, bfail = t.grpcFilters(&c, r.Namespace, br.Filters)
			if bfail != "" && b.Invalid == "" {
				b.Invalid, b.Endpoints, b.Filters = bfail, nil, nil
			}
			out.Backends = append(out.Backends, b)
		}
		if fail != "" {
			out.Filters = nil
			out.Backends = []ir.Backend{{Name: "unresolved-filter", Weight: 1, Protocol: ir.BackendH2C, Invalid: fail}}
		}
		rules = append(rules, out)
	}
	return rules, c.route, c.refs
}

func (t *translator) grpcFilters(c *collector, ns string, fs []gwv1.GRPCRouteFilter) ([]ir.Filter, string) {
	var out []ir.Filter
	fail := ""
	for i, f := range fs {
		switch f.Type {
		case gwv1.GRPCRouteFilterRequestHeaderModifier:
			if f.RequestHeaderModifier != nil {
				out = append(out, ir.Filter{Type: ir.FilterRequestHeaderModifier, RequestHeaderModifier: headerModifier(f.RequestHeaderModifier)})
			}
		case gwv1.GRPCRouteFilterResponseHeaderModifier:
			if f.ResponseHeaderModifier != nil {
				out = append(out, ir.Filter{Type: ir.FilterResponseHeaderModifier, ResponseHeaderModifier: headerModifier(f.ResponseHeaderModifier)})
			}
		case gwv1.GRPCRouteFilterRequestMirror:
			if f.RequestMirror != nil {
				out = append(out, t.mirror(c, kindGRPC, ns, f.RequestMirror, true))
			}
		case gwv1.GRPCRouteFilterExtensionRef:
			msg := fmt.Sprintf("filters[%d]: extensionRef %s is not supported by this implementation", i, extName(f.ExtensionRef))
			c.ref(&problem{reason: gwv1.RouteReasonInvalidKind, msg: msg})
			fail = msg
		default:
			msg := fmt.Sprintf("filters[%d]: filter type %s is not supported by this implementation", i, f.Type)
			if c.route == nil {
				c.route = &problem{reason: gwv1.RouteReasonUnsupportedValue, msg: msg}
			}
			fail = msg
		}
	}
	return out, fail
}
