package translate

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// The reference implementation serves networking.k8s.io/v1 Ingresses through the same IR and
// proxies as Gateways. An IngressClass whose spec.controller is our controller name and whose
// spec.parameters name a Gateway of ours (apiGroup gateway.networking.k8s.io, kind Gateway,
// scope Namespace) makes that Gateway's proxies the Ingress data plane: the Ingresses of the
// class are added to its snapshot as routes on a hostless HTTP listener on port 80 (the
// Gateway's own hostless HTTP listener on 80 when it has one) and, when any of them has TLS, a
// hostless HTTPS listener "ingress-https" on 443 with every Ingress certificate (chosen by SNI).
//
// Semantics are ingress-nginx's for what it shares with the Ingress spec: Prefix and Exact as
// the spec says, ImplementationSpecific as a path prefix (a RegularExpression with use-regex),
// the longest match wins, spec.defaultBackend answers what matches no rule. These ingress-nginx
// annotations are honoured: ssl-redirect / force-ssl-redirect (HTTP requests for a host with a
// certificate get a 308 to https, the default), permanent-redirect / temporal-redirect (+ -code),
// rewrite-target without capture groups (the matched prefix is replaced), use-regex, and canary
// Ingresses (canary-weight, canary-weight-total, canary-by-header, -value, -pattern) that split
// their primary's matching paths. Other annotations are ignored.

const (
	ingressHTTPSListener = "ingress-https"
	nginxAnn             = "nginx.ingress.kubernetes.io/"
	defaultClassAnn      = "ingressclass.kubernetes.io/is-default-class"
)

// IngressDataPlanes maps each IngressClass we serve to the Gateway whose proxies serve it.
func IngressDataPlanes(in *Input) map[string]types.NamespacedName {
	out := map[string]types.NamespacedName{}
	for _, ic := range in.IngressClasses {
		p := ic.Spec.Parameters
		if ic.Spec.Controller != in.ControllerName || ic.DeletionTimestamp != nil || p == nil {
			continue
		}
		if p.APIGroup == nil || *p.APIGroup != gwv1.GroupName || p.Kind != kindGateway || p.Namespace == nil {
			continue
		}
		out[ic.Name] = nn(*p.Namespace, p.Name)
	}
	return out
}

// IngressClassOf is the class an Ingress asks for: spec.ingressClassName, else the legacy
// annotation, else the default class among ours ("" when none).
func IngressClassOf(in *Input, ing *networkingv1.Ingress) string {
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName
	}
	if c := ing.Annotations["kubernetes.io/ingress.class"]; c != "" {
		return c
	}
	for _, ic := range in.IngressClasses {
		if ic.Spec.Controller == in.ControllerName && ic.Annotations[defaultClassAnn] == "true" {
			return ic.Name
		}
	}
	return ""
}

// IngressesServedBy returns the Ingresses that gateway serves, oldest first.
func IngressesServedBy(in *Input, gateway types.NamespacedName) []*networkingv1.Ingress {
	dps := IngressDataPlanes(in)
	var out []*networkingv1.Ingress
	for _, ing := range in.Ingresses {
		if ing.DeletionTimestamp != nil {
			continue
		}
		if dp, ok := dps[IngressClassOf(in, ing)]; ok && dp == gateway {
			out = append(out, ing)
		}
	}
	slices.SortFunc(out, ByAge[*networkingv1.Ingress])
	return out
}

// IngressSecretRefs lists the TLS Secrets of the Ingresses we serve.
func IngressSecretRefs(in *Input) []types.NamespacedName {
	dps := IngressDataPlanes(in)
	var out []types.NamespacedName
	for _, ing := range in.Ingresses {
		if _, ok := dps[IngressClassOf(in, ing)]; !ok {
			continue
		}
		for _, t := range ing.Spec.TLS {
			if t.SecretName != "" {
				out = append(out, nn(ing.Namespace, t.SecretName))
			}
		}
	}
	return out
}

type ingressAnn struct {
	canary                       bool
	weight, total                int32
	hasWeight                    bool
	header, headerValue, pattern string
	rewrite                      *string
	useRegex                     bool
	sslRedirect, forceSSL        bool
	redirect                     *ir.Redirect
}

func parseIngressAnn(a map[string]string) ingressAnn {
	g := func(k string) (string, bool) { v, ok := a[nginxAnn+k]; return v, ok }
	r := ingressAnn{total: 100, sslRedirect: true}
	r.canary = a[nginxAnn+"canary"] == "true"
	if v, ok := g("canary-weight"); ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			r.weight, r.hasWeight = int32(n), true
		}
	}
	if v, ok := g("canary-weight-total"); ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n > 0 {
			r.total = int32(n)
		}
	}
	if r.weight > r.total {
		r.hasWeight = false
	}
	r.header, r.headerValue, r.pattern = a[nginxAnn+"canary-by-header"], a[nginxAnn+"canary-by-header-value"], a[nginxAnn+"canary-by-header-pattern"]
	if v, ok := g("rewrite-target"); ok && !strings.Contains(v, "$") {
		r.rewrite = &v
	}
	r.useRegex = a[nginxAnn+"use-regex"] == "true"
	if a[nginxAnn+"ssl-redirect"] == "false" {
		r.sslRedirect = false
	}
	r.forceSSL = a[nginxAnn+"force-ssl-redirect"] == "true"
	target, code := a[nginxAnn+"permanent-redirect"], 301
	codeKey := "permanent-redirect-code"
	if target == "" {
		target, code, codeKey = a[nginxAnn+"temporal-redirect"], 302, "temporal-redirect-code"
	}
	if u, err := url.Parse(target); target != "" && err == nil && u.Scheme != "" && u.Host != "" {
		if n, err := strconv.Atoi(a[nginxAnn+codeKey]); err == nil && slices.Contains([]int{301, 302, 303, 307, 308}, n) {
			code = n
		}
		scheme, host, path := u.Scheme, u.Hostname(), u.EscapedPath()
		if path == "" {
			path = "/"
		}
		rd := &ir.Redirect{Scheme: &scheme, Hostname: &host, Path: &ir.PathModifier{Type: ir.ReplaceFullPath, ReplaceFullPath: path}, StatusCode: code}
		if p, err := strconv.ParseInt(u.Port(), 10, 32); err == nil {
			p32 := int32(p)
			rd.Port = &p32
		}
		r.redirect = rd
	}
	return r
}

// ingressRule is one primary path: where it lives and what a canary may change.
type ingressRule struct {
	route    int // index into httpRoutes and httpsRoutes (built in step)
	match    ir.HTTPMatch
	canaried bool
}

// ingressRoutes builds the routes of the Ingresses served by gw: for the HTTP listener and for
// the HTTPS one, and the certificates.
func (t *translator) ingressRoutes(ings []*networkingv1.Ingress) (httpRoutes, httpsRoutes []ir.HTTPRoute, certs []ir.Certificate) {
	tlsHosts := map[string]bool{}
	seenCert := map[string]bool{}
	for _, ing := range ings {
		if parseIngressAnn(ing.Annotations).canary {
			continue
		}
		for _, tl := range ing.Spec.TLS {
			for _, h := range tl.Hosts {
				tlsHosts[h] = true
			}
			k := nn(ing.Namespace, tl.SecretName)
			if s, ok := t.secrets[k]; ok && !seenCert[k.String()] && s.Type == corev1.SecretTypeTLS {
				seenCert[k.String()] = true
				certs = append(certs, ir.Certificate{Name: k.String(), CertPEM: s.Data[corev1.TLSCertKey], KeyPEM: s.Data[corev1.TLSPrivateKeyKey]})
			}
		}
	}
	rules := map[string]*ingressRule{}
	key := func(ns, host string, m ir.HTTPMatch) string {
		return ns + "|" + host + "|" + string(m.Path.Type) + "|" + m.Path.Value
	}
	type pending struct {
		ing  *networkingv1.Ingress
		host string
		m    ir.HTTPMatch
		b    ir.Backend
		a    ingressAnn
	}
	var canaries []pending
	for _, ing := range ings {
		a := parseIngressAnn(ing.Annotations)
		meta := func(host string) ir.RouteMeta {
			m := ir.RouteMeta{Namespace: ing.Namespace, Name: "ingress/" + ing.Name, CreationTimestamp: ing.CreationTimestamp.Time}
			if host != "" {
				m.Hostnames = []string{host}
				m.Name += "/" + host
			}
			return m
		}
		if ing.Spec.DefaultBackend != nil && !a.canary {
			b := t.ingressBackend(ing.Namespace, *ing.Spec.DefaultBackend, 1)
			r := ir.HTTPRoute{RouteMeta: meta(""), Rules: []ir.HTTPRule{{Matches: []ir.HTTPMatch{{Path: &ir.PathMatch{Type: ir.MatchPathPrefix, Value: "/"}}}, Backends: []ir.Backend{b}}}}
			r.Name += "/default-backend"
			httpRoutes, httpsRoutes = append(httpRoutes, r), append(httpsRoutes, r)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			hr, hsr := ir.HTTPRoute{RouteMeta: meta(rule.Host)}, ir.HTTPRoute{RouteMeta: meta(rule.Host)}
			redirect := a.forceSSL || tlsHosts[rule.Host] && a.sslRedirect
			for _, p := range rule.HTTP.Paths {
				m, ok := ingressMatch(p, a.useRegex)
				if !ok {
					continue
				}
				b := t.ingressBackend(ing.Namespace, p.Backend, 1)
				if a.canary {
					canaries = append(canaries, pending{ing, rule.Host, m, b, a})
					continue
				}
				r := ir.HTTPRule{Index: len(hsr.Rules), Matches: []ir.HTTPMatch{m}}
				if a.redirect != nil {
					r.Filters = []ir.Filter{{Type: ir.FilterRequestRedirect, RequestRedirect: a.redirect}}
				} else {
					r.Backends = []ir.Backend{b}
					if a.rewrite != nil {
						pm := &ir.PathModifier{Type: ir.ReplacePrefixMatch, ReplacePrefixMatch: *a.rewrite}
						if m.Path.Type == ir.MatchExact {
							pm = &ir.PathModifier{Type: ir.ReplaceFullPath, ReplaceFullPath: *a.rewrite}
						}
						if m.Path.Type != ir.MatchRegularExpression {
							r.Filters = []ir.Filter{{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{Path: pm}}}
						}
					}
				}
				k := key(ing.Namespace, rule.Host, m)
				if _, dup := rules[k]; dup {
					continue // the older Ingress keeps the path
				}
				hsr.Rules = append(hsr.Rules, r)
				hr2 := r
				if redirect {
					https := "https"
					hr2 = ir.HTTPRule{Index: r.Index, Matches: r.Matches, Filters: []ir.Filter{{Type: ir.FilterRequestRedirect, RequestRedirect: &ir.Redirect{Scheme: &https, StatusCode: 308}}}}
				}
				hr.Rules = append(hr.Rules, hr2)
				rules[k] = &ingressRule{route: len(httpsRoutes), match: m}
			}
			if len(hsr.Rules) > 0 {
				httpRoutes, httpsRoutes = append(httpRoutes, hr), append(httpsRoutes, hsr)
			}
		}
	}
	// Canaries join their primary's rule: a weighted second backend and header rules.
	for _, c := range canaries {
		pr, ok := rules[key(c.ing.Namespace, c.host, c.m)]
		if !ok || pr.canaried || (!c.a.hasWeight && c.a.header == "") {
			continue
		}
		pr.canaried = true
		for _, routes := range [][]ir.HTTPRoute{httpRoutes, httpsRoutes} {
			rt := &routes[pr.route]
			ri := slices.IndexFunc(rt.Rules, func(r ir.HTTPRule) bool {
				return r.Matches[0].Path != nil && *r.Matches[0].Path == *c.m.Path && len(r.Matches[0].Headers) == 0
			})
			if ri < 0 || len(rt.Rules[ri].Backends) != 1 {
				continue // a redirect: nothing to split
			}
			base := rt.Rules[ri]
			primary := base.Backends[0]
			if c.a.header != "" {
				hm := ir.HeaderMatch{Type: ir.MatchExact, Name: c.a.header, Value: "always"}
				switch {
				case c.a.headerValue != "":
					hm.Value = c.a.headerValue
				case c.a.pattern != "":
					hm.Type, hm.Value = ir.MatchRegularExpression, c.a.pattern
				}
				path := *c.m.Path
				cb := c.b
				rt.Rules = append(rt.Rules, ir.HTTPRule{Index: len(rt.Rules), Matches: []ir.HTTPMatch{{Path: &path, Headers: []ir.HeaderMatch{hm}}}, Filters: base.Filters, Backends: []ir.Backend{cb}})
				if c.a.headerValue == "" && c.a.pattern == "" && c.a.hasWeight && c.a.weight > 0 {
					rt.Rules = append(rt.Rules, ir.HTTPRule{Index: len(rt.Rules), Matches: []ir.HTTPMatch{{Path: &path, Headers: []ir.HeaderMatch{{Type: ir.MatchExact, Name: c.a.header, Value: "never"}}}}, Filters: base.Filters, Backends: []ir.Backend{primary}})
				}
			}
			if c.a.hasWeight {
				p, cb := primary, c.b
				p.Weight, cb.Weight = c.a.total-c.a.weight, c.a.weight
				rt.Rules[ri].Backends = []ir.Backend{p, cb}
			}
		}
	}
	return httpRoutes, httpsRoutes, certs
}

// ingressMatch is the IR match of an Ingress path.
func ingressMatch(p networkingv1.HTTPIngressPath, useRegex bool) (ir.HTTPMatch, bool) {
	v := p.Path
	if v == "" {
		v = "/"
	}
	if p.PathType == nil || !strings.HasPrefix(v, "/") {
		return ir.HTTPMatch{}, false
	}
	t := ir.MatchPathPrefix
	switch *p.PathType {
	case networkingv1.PathTypeExact:
		t = ir.MatchExact
	case networkingv1.PathTypePrefix:
	case networkingv1.PathTypeImplementationSpecific:
		if useRegex {
			t = ir.MatchRegularExpression
		}
	default:
		return ir.HTTPMatch{}, false
	}
	if t == ir.MatchPathPrefix && len(v) > 1 {
		v = strings.TrimSuffix(v, "/") // the spec ignores a trailing slash in a Prefix
	}
	return ir.HTTPMatch{Path: &ir.PathMatch{Type: t, Value: v}}, true
}

// ingressBackend resolves an Ingress backend (port by number or name) to endpoints.
func (t *translator) ingressBackend(ns string, b networkingv1.IngressBackend, weight int32) ir.Backend {
	if b.Service == nil {
		return ir.Backend{Name: ns + "/<resource>", Weight: weight, Invalid: "resource backends are not supported"}
	}
	out := ir.Backend{Name: fmt.Sprintf("%s/%s:%s", ns, b.Service.Name, cmp.Or(b.Service.Port.Name, strconv.Itoa(int(b.Service.Port.Number)))), Weight: weight}
	svc, ok := t.services[nn(ns, b.Service.Name)]
	if !ok {
		out.Invalid = fmt.Sprintf("Service %s/%s not found", ns, b.Service.Name)
		return out
	}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if (b.Service.Port.Name != "" && sp.Name == b.Service.Port.Name) || (b.Service.Port.Number != 0 && sp.Port == b.Service.Port.Number) {
			if sp.AppProtocol != nil && *sp.AppProtocol == appProtocolH2C {
				out.Protocol = ir.BackendH2C
			}
			out.Endpoints = t.endpoints(ns, svc, sp)
			return out
		}
	}
	out.Invalid = fmt.Sprintf("Service %s/%s has no port %s", ns, b.Service.Name, cmp.Or(b.Service.Port.Name, strconv.Itoa(int(b.Service.Port.Number))))
	return out
}

// ingressListeners adds the Ingresses gs serves to its snapshot.
func (t *translator) ingressListeners(gs *gatewayState, snap *ir.Snapshot, ports map[int32]bool) {
	if len(t.in.IngressClasses) == 0 || len(t.in.Ingresses) == 0 {
		return
	}
	ings := IngressesServedBy(t.in, nn(gs.gw.Namespace, gs.gw.Name))
	if len(ings) == 0 {
		return
	}
	httpRoutes, httpsRoutes, certs := t.ingressRoutes(ings)
	i := slices.IndexFunc(snap.Listeners, func(l ir.Listener) bool {
		return l.Port == 80 && l.Protocol == ir.ProtocolHTTP && l.Hostname == ""
	})
	if i < 0 {
		if slices.ContainsFunc(snap.Listeners, func(l ir.Listener) bool { return l.Port == 80 }) {
			return // port 80 is the Gateway's own, for something else
		}
		snap.Listeners = append(snap.Listeners, ir.Listener{Name: "ingress-http", Port: 80, Protocol: ir.ProtocolHTTP})
		i = len(snap.Listeners) - 1
	}
	l := &snap.Listeners[i]
	l.HTTPRoutes = append(slices.Clone(l.HTTPRoutes), httpRoutes...)
	ports[80] = true
	if len(certs) > 0 && !slices.ContainsFunc(snap.Listeners, func(l ir.Listener) bool { return l.Port == 443 }) {
		snap.Listeners = append(snap.Listeners, ir.Listener{Name: ingressHTTPSListener, Port: 443, Protocol: ir.ProtocolHTTPS, TLS: &ir.TLS{Certificates: certs}, HTTPRoutes: httpsRoutes})
		ports[443] = true
	}
}
