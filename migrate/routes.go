package migrate

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

type routeBuild struct {
	route *gwv1.HTTPRoute
}

// ruleRef locates the rule a primary Ingress path became, for canaries to join.
type ruleRef struct {
	rb      *routeBuild
	index   int
	canary  string // the canary Ingress merged in, if any
	primary *ingressState
}

func ruleKey(ns, host string, m *gwv1.HTTPPathMatch) string {
	return ns + "|" + host + "|" + string(*m.Type) + "|" + *m.Value
}

// route returns the HTTPRoute named <ingress>-<suffix>, creating it with hostnames and parents.
func (c *converter) route(st *ingressState, suffix, host string, sections []string) *routeBuild {
	name := st.ing.Name + "-" + suffix
	if len(name) > 253 {
		name = name[:253]
	}
	key := st.ing.Namespace + "/" + name
	if rb, ok := c.routes[key]; ok {
		return rb
	}
	r := &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: st.ing.Namespace, Name: name, Labels: map[string]string{"gatecheck.dev/migrated-from": st.ing.Name}},
	}
	if host != "" {
		r.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(host)}
	}
	if len(sections) == 0 {
		r.Spec.ParentRefs = []gwv1.ParentReference{{Name: gwv1.ObjectName(c.opts.GatewayName)}}
	}
	for _, s := range sections {
		r.Spec.ParentRefs = append(r.Spec.ParentRefs, gwv1.ParentReference{Name: gwv1.ObjectName(c.opts.GatewayName), SectionName: ptr.To(gwv1.SectionName(s))})
	}
	rb := &routeBuild{route: r}
	c.routes[key] = rb
	c.order = append(c.order, rb)
	return rb
}

// httpsListenersFor names the HTTPS listeners a host's requests arrive on.
func (c *converter) httpsListenersFor(ns, host string) []string {
	g := c.gateway(ns)
	if l, ok := g.https[host]; ok {
		return []string{l.name}
	}
	if l, ok := g.https[""]; ok {
		return []string{l.name}
	}
	return nil
}

func (c *converter) primary(st *ingressState) {
	ing, a := st.ing, st.ann
	c.gateway(ing.Namespace)
	c.tls(st)
	c.backendProtocol(st)
	if ing.Spec.DefaultBackend != nil {
		if ref, ok := c.backendRef(st, "spec.defaultBackend", *ing.Spec.DefaultBackend); ok {
			rb := c.route(st, "default-backend", "", nil)
			c.defaultRoutes = append(c.defaultRoutes, rb)
			rb.route.Spec.Rules = append(rb.route.Spec.Rules, gwv1.HTTPRouteRule{
				Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("/")}}},
				BackendRefs: []gwv1.HTTPBackendRef{ref},
			})
		}
	}
	for i, r := range ing.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		if r.HTTP == nil {
			c.add(Note, ing, field+".http", "rule without http paths: nothing to route")
			continue
		}
		host := r.Host
		label := "any-host"
		if host != "" {
			label = hostLabel(host)
		}
		redirect := a.forceSSLRedirect || (c.tlsHosts[host] && (a.sslRedirect == nil || *a.sslRedirect))
		var rb, redirectRB *routeBuild
		if redirect {
			https := c.httpsListenersFor(ing.Namespace, host)
			if len(https) == 0 {
				c.add(Note, ing, field, fmt.Sprintf("HTTP requests for host %q are redirected to HTTPS, but no Ingress in namespace %s has a certificate for it: the Gateway has no HTTPS listener to serve them", host, ing.Namespace))
			}
			rb = c.route(st, label, host, https)
			redirectRB = c.route(st, label+"-https-redirect", host, []string{"http"})
		} else {
			rb = c.route(st, label, host, nil)
		}
		for j, p := range r.HTTP.Paths {
			pf := fmt.Sprintf("%s.http.paths[%d]", field, j)
			m, ok := c.pathMatch(st, pf, p)
			if !ok {
				continue
			}
			rule := gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{{Path: m}}}
			if a.redirect != nil {
				rule.Filters = append(rule.Filters, redirectFilter(a.redirect))
			} else {
				ref, ok := c.backendRef(st, pf+".backend", p.Backend)
				if !ok {
					continue
				}
				rule.BackendRefs = []gwv1.HTTPBackendRef{ref}
				if a.hasRewrite {
					if f, ok := c.rewrite(st, m); ok {
						rule.Filters = append(rule.Filters, f)
					}
				}
			}
			key := ruleKey(ing.Namespace, host, m)
			if have, ok := c.rules[key]; ok {
				c.add(Unsupported, ing, pf, fmt.Sprintf("host %q path %s %q is already routed by %s; ingress-nginx picks one of them, the Gateway API objects would compete", host, *m.Type, *m.Value, have.primary.obj))
				continue
			}
			c.rules[key] = &ruleRef{rb: rb, index: len(rb.route.Spec.Rules), primary: st}
			rb.route.Spec.Rules = append(rb.route.Spec.Rules, rule)
			if redirectRB != nil {
				redirectRB.route.Spec.Rules = append(redirectRB.route.Spec.Rules, gwv1.HTTPRouteRule{
					Matches: []gwv1.HTTPRouteMatch{{Path: m}},
					Filters: []gwv1.HTTPRouteFilter{{
						Type:            gwv1.HTTPRouteFilterRequestRedirect,
						RequestRedirect: &gwv1.HTTPRequestRedirectFilter{Scheme: ptr.To("https"), StatusCode: ptr.To(308)},
					}},
				})
			}
		}
	}
}

func redirectFilter(r *redirectSpec) gwv1.HTTPRouteFilter {
	f := &gwv1.HTTPRequestRedirectFilter{
		Scheme:     ptr.To(r.url.Scheme),
		Hostname:   ptr.To(gwv1.PreciseHostname(r.url.Hostname())),
		StatusCode: ptr.To(r.code),
	}
	if p := r.url.Port(); p != "" {
		var n int32
		fmt.Sscan(p, &n)
		f.Port = ptr.To(gwv1.PortNumber(n))
	}
	path := r.url.EscapedPath()
	if path == "" {
		path = "/"
	}
	f.Path = &gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(path)}
	return gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: f}
}

func (c *converter) pathMatch(st *ingressState, field string, p networkingv1.HTTPIngressPath) (*gwv1.HTTPPathMatch, bool) {
	if p.PathType == nil {
		c.add(Unsupported, st.ing, field+".pathType", "missing (required in networking.k8s.io/v1)")
		return nil, false
	}
	value := p.Path
	if value == "" {
		value = "/"
	}
	if !strings.HasPrefix(value, "/") {
		c.add(Unsupported, st.ing, field+".path", fmt.Sprintf("%q does not start with /", p.Path))
		return nil, false
	}
	switch *p.PathType {
	case networkingv1.PathTypeExact:
		if st.ann.useRegex {
			c.add(Note, st.ing, field+".pathType", "Exact with use-regex: ingress-nginx treats the path as a regular expression, the HTTPRoute matches it exactly")
		}
		return &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchExact), Value: ptr.To(value)}, true
	case networkingv1.PathTypePrefix:
		if st.ann.useRegex {
			c.add(Note, st.ing, field+".pathType", "Prefix with use-regex: ingress-nginx treats the path as a regular expression, the HTTPRoute matches it as a path prefix")
		}
		return &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(value)}, true
	case networkingv1.PathTypeImplementationSpecific:
		if st.ann.useRegex {
			c.add(Note, st.ing, field+".path", fmt.Sprintf("%q becomes a RegularExpression match: ingress-nginx matches regexes case-insensitively and anchored at the start only; check the implementation's regex dialect", value))
			return &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchRegularExpression), Value: ptr.To(value)}, true
		}
		if value != "/" {
			c.add(Note, st.ing, field+".pathType", fmt.Sprintf("ImplementationSpecific %q becomes PathPrefix: ingress-nginx matches a plain string prefix (also %sx), PathPrefix whole path segments", value, strings.TrimSuffix(value, "/")))
		}
		return &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(value)}, true
	}
	c.add(Unsupported, st.ing, field+".pathType", fmt.Sprintf("unknown path type %q", *p.PathType))
	return nil, false
}

func (c *converter) rewrite(st *ingressState, m *gwv1.HTTPPathMatch) (gwv1.HTTPRouteFilter, bool) {
	field := annField(NginxPrefix + "rewrite-target")
	target := st.ann.rewriteTarget
	var pm gwv1.HTTPPathModifier
	switch *m.Type {
	case gwv1.PathMatchPathPrefix:
		pm = gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To(target)}
		msg := fmt.Sprintf("%q on prefix %q becomes URLRewrite ReplacePrefixMatch: ingress-nginx rewrites the first regex match of the prefix instead", target, *m.Value)
		if strings.HasSuffix(target, "/") && target != "/" || target == "/" && *m.Value != "/" {
			msg += fmt.Sprintf(", which doubles the slash (%s/x becomes %s/x there, %sx here)", strings.TrimSuffix(*m.Value, "/"), target, ensureSlash(target))
		}
		c.add(Note, st.ing, field, msg)
	case gwv1.PathMatchExact:
		pm = gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(target)}
	default:
		c.add(Unsupported, st.ing, field, fmt.Sprintf("rewrite of the regular expression path %q: a URLRewrite cannot replace a regex match", *m.Value))
		return gwv1.HTTPRouteFilter{}, false
	}
	return gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{Path: &pm}}, true
}

func ensureSlash(s string) string {
	if strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

func (c *converter) backendRef(st *ingressState, field string, b networkingv1.IngressBackend) (gwv1.HTTPBackendRef, bool) {
	if b.Resource != nil {
		c.add(Unsupported, st.ing, field+".resource", "resource backends have no Gateway API equivalent")
		return gwv1.HTTPBackendRef{}, false
	}
	if b.Service == nil {
		c.add(Unsupported, st.ing, field+".service", "missing")
		return gwv1.HTTPBackendRef{}, false
	}
	port := b.Service.Port.Number
	if port == 0 {
		name := b.Service.Port.Name
		svc, ok := c.services[st.ing.Namespace+"/"+b.Service.Name]
		if !ok {
			c.add(Unsupported, st.ing, field+".service.port.name", fmt.Sprintf("port %q of Service %s/%s: a backendRef needs the port number; give the Service too (-f) or read from the cluster", name, st.ing.Namespace, b.Service.Name))
			return gwv1.HTTPBackendRef{}, false
		}
		for _, p := range svc.Spec.Ports {
			if p.Name == name {
				port = p.Port
			}
		}
		if port == 0 {
			c.add(Unsupported, st.ing, field+".service.port.name", fmt.Sprintf("Service %s/%s has no port named %q", st.ing.Namespace, b.Service.Name, name))
			return gwv1.HTTPBackendRef{}, false
		}
	}
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: gwv1.ObjectName(b.Service.Name),
		Port: ptr.To(gwv1.PortNumber(port)),
	}}}, true
}

// backendProtocol reports what backend-protocol needs beyond the HTTPRoute.
func (c *converter) backendProtocol(st *ingressState) {
	field := annField(NginxPrefix + "backend-protocol")
	switch st.ann.backendProtocol {
	case "", "HTTP":
	case "GRPC":
		for _, svc := range ingressServices(st.ing) {
			c.add(Note, st.ing, field, fmt.Sprintf("GRPC: set appProtocol: kubernetes.io/h2c on the port of Service %s/%s so the Gateway speaks HTTP/2 to it (the paths stay an HTTPRoute; a GRPCRoute matches methods, not paths)", st.ing.Namespace, svc))
		}
	case "HTTPS", "GRPCS":
		c.add(Unsupported, st.ing, field, st.ann.backendProtocol+": TLS to the backend needs a BackendTLSPolicy with the backend's CA certificate and hostname, which the Ingress does not carry")
	default:
		c.add(Unsupported, st.ing, field, st.ann.backendProtocol+" backends have no Gateway API equivalent")
	}
}

func ingressServices(ing *networkingv1.Ingress) []string {
	seen := map[string]bool{}
	var out []string
	addB := func(b networkingv1.IngressBackend) {
		if b.Service != nil && !seen[b.Service.Name] {
			seen[b.Service.Name] = true
			out = append(out, b.Service.Name)
		}
	}
	if ing.Spec.DefaultBackend != nil {
		addB(*ing.Spec.DefaultBackend)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP != nil {
			for _, p := range r.HTTP.Paths {
				addB(p.Backend)
			}
		}
	}
	return out
}

func (c *converter) canary(st *ingressState) {
	ing, a := st.ing, st.ann
	if !a.hasWeight && a.canaryHeader == "" {
		c.add(Note, ing, annField(NginxPrefix+"canary"), "a canary with neither canary-weight nor canary-by-header gets no traffic: nothing migrated")
		return
	}
	if len(ing.Spec.TLS) > 0 {
		c.add(Note, ing, "spec.tls", "ignored on a canary Ingress, as in ingress-nginx")
	}
	if ing.Spec.DefaultBackend != nil {
		c.add(Note, ing, "spec.defaultBackend", "ignored on a canary Ingress: ingress-nginx splits only the primary's paths")
	}
	for i, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for j, p := range r.HTTP.Paths {
			pf := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			m, ok := c.pathMatch(st, pf, p)
			if !ok {
				continue
			}
			ref, ok := c.backendRef(st, pf+".backend", p.Backend)
			if !ok {
				continue
			}
			rr, ok := c.rules[ruleKey(ing.Namespace, r.Host, m)]
			if !ok {
				c.add(Note, ing, pf, fmt.Sprintf("no Ingress without canary in namespace %s serves host %q path %s %q: ingress-nginx ignores this canary path, and so does the migration", ing.Namespace, r.Host, *m.Type, *m.Value))
				continue
			}
			if rr.canary != "" {
				c.add(Unsupported, ing, pf, fmt.Sprintf("host %q path %q already has the canary %s; ingress-nginx supports one canary per path", r.Host, *m.Value, rr.canary))
				continue
			}
			rule := &rr.rb.route.Spec.Rules[rr.index]
			if len(rule.BackendRefs) != 1 {
				c.add(Unsupported, ing, pf, fmt.Sprintf("the primary path of %s answers with a redirect, there is no backend to split", rr.primary.obj))
				continue
			}
			rr.canary = st.obj
			primaryRef := rule.BackendRefs[0]
			if a.canaryHeader != "" {
				hm := gwv1.HTTPHeaderMatch{Type: ptr.To(gwv1.HeaderMatchExact), Name: gwv1.HTTPHeaderName(a.canaryHeader), Value: "always"}
				switch {
				case a.canaryHeaderValue != "":
					hm.Value = a.canaryHeaderValue
				case a.canaryHeaderPattern != "":
					hm.Type, hm.Value = ptr.To(gwv1.HeaderMatchRegularExpression), a.canaryHeaderPattern
				}
				headerRule := gwv1.HTTPRouteRule{
					Matches:     []gwv1.HTTPRouteMatch{{Path: m, Headers: []gwv1.HTTPHeaderMatch{hm}}},
					Filters:     rule.Filters,
					BackendRefs: []gwv1.HTTPBackendRef{ref},
				}
				extra := []gwv1.HTTPRouteRule{headerRule}
				if a.canaryHeaderValue == "" && a.canaryHeaderPattern == "" && a.hasWeight && a.canaryWeight > 0 {
					// "never" keeps a request on the primary whatever the weight says.
					extra = append(extra, gwv1.HTTPRouteRule{
						Matches:     []gwv1.HTTPRouteMatch{{Path: m, Headers: []gwv1.HTTPHeaderMatch{{Type: ptr.To(gwv1.HeaderMatchExact), Name: gwv1.HTTPHeaderName(a.canaryHeader), Value: "never"}}}},
						Filters:     rule.Filters,
						BackendRefs: []gwv1.HTTPBackendRef{primaryRef},
					})
				}
				rr.rb.route.Spec.Rules = append(rr.rb.route.Spec.Rules, extra...)
				rule = &rr.rb.route.Spec.Rules[rr.index] // the append may have moved it
			}
			if a.hasWeight {
				primary := rule.BackendRefs[0]
				primary.Weight = ptr.To(a.canaryTotal - a.canaryWeight)
				canary := ref
				canary.Weight = ptr.To(a.canaryWeight)
				rule.BackendRefs = []gwv1.HTTPBackendRef{primary, canary}
			}
		}
	}
}
