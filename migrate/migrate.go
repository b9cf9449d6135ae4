// Package migrate translates networking.k8s.io/v1 Ingress objects, with the common ingress-nginx
// annotations, into the Gateway API objects that should behave the same: one Gateway per
// namespace and HTTPRoutes. Whatever cannot be expressed is returned as a Finding naming the
// Ingress and the field or annotation; nothing is dropped silently.
package migrate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Severity says whether a finding changes behaviour.
type Severity string

const (
	// Unsupported: the Ingress asks for something the output does not do. The command fails
	// unless told to continue.
	Unsupported Severity = "unsupported"
	// Note: expressed, with a difference or a follow-up the user should know about.
	Note Severity = "note"
)

// Finding is one thing the migration could not express exactly.
type Finding struct {
	Severity Severity `json:"severity"`
	// Object is "Ingress namespace/name".
	Object string `json:"object"`
	// Field is the Ingress field or annotation, e.g. "metadata.annotations[nginx.ingress.kubernetes.io/auth-url]".
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s %s: %s", f.Severity, f.Object, f.Field, f.Message)
}

// Options control the output.
type Options struct {
	// GatewayClass is the class of the Gateways written (required).
	GatewayClass string
	// GatewayName names the Gateway written in each namespace (default "ingress").
	GatewayName string
	// IngressClass, when set, converts only Ingresses of that class (spec.ingressClassName or
	// the kubernetes.io/ingress.class annotation); others are skipped with a note.
	IngressClass string
	// Services resolve backend ports given by name. Optional.
	Services []*corev1.Service
}

// Result is the migration of a set of Ingresses.
type Result struct {
	Gateways   []*gwv1.Gateway
	HTTPRoutes []*gwv1.HTTPRoute
	Findings   []Finding
	// Converted counts the Ingresses translated.
	Converted int
}

// Unsupported returns the findings of severity Unsupported.
func (r *Result) Unsupported() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == Unsupported {
			out = append(out, f)
		}
	}
	return out
}

// Convert translates ings. It fails only on bad options; problems with Ingresses are findings.
func Convert(ings []*networkingv1.Ingress, opts Options) (*Result, error) {
	if opts.GatewayClass == "" {
		return nil, fmt.Errorf("a GatewayClass is required (--gateway-class)")
	}
	if opts.GatewayName == "" {
		opts.GatewayName = "ingress"
	}
	c := &converter{
		opts:     opts,
		res:      &Result{},
		services: map[string]*corev1.Service{},
		gateways: map[string]*gatewayBuild{},
		routes:   map[string]*routeBuild{},
		rules:    map[string]*ruleRef{},
		tlsHosts: map[string]bool{},
	}
	for _, s := range opts.Services {
		c.services[s.Namespace+"/"+s.Name] = s
	}
	sorted := slices.Clone(ings)
	slices.SortFunc(sorted, func(a, b *networkingv1.Ingress) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var primaries, canaries []*ingressState
	for _, ing := range sorted {
		if ing.Namespace == "" {
			ing = ing.DeepCopy()
			ing.Namespace = "default"
		}
		if opts.IngressClass != "" {
			if cls := ingressClassOf(ing); cls != opts.IngressClass {
				c.add(Note, ing, "spec.ingressClassName", fmt.Sprintf("class %q is not %q: skipped", cls, opts.IngressClass))
				continue
			}
		}
		st := &ingressState{ing: ing, obj: "Ingress " + ing.Namespace + "/" + ing.Name}
		st.ann = c.parseAnnotations(st)
		if st.ann.canary {
			canaries = append(canaries, st)
		} else {
			primaries = append(primaries, st)
		}
		for _, t := range ing.Spec.TLS {
			for _, h := range t.Hosts {
				c.tlsHosts[h] = true
			}
		}
	}
	for _, st := range primaries {
		c.primary(st)
		c.res.Converted++
	}
	for _, st := range canaries {
		c.canary(st)
		c.res.Converted++
	}
	c.finish()
	return c.res, nil
}

func ingressClassOf(ing *networkingv1.Ingress) string {
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName
	}
	return ing.Annotations["kubernetes.io/ingress.class"]
}

type ingressState struct {
	ing *networkingv1.Ingress
	obj string
	ann annotations
}

type converter struct {
	opts     Options
	res      *Result
	services map[string]*corev1.Service
	gateways map[string]*gatewayBuild // by namespace
	routes   map[string]*routeBuild   // by namespace/name
	rules    map[string]*ruleRef
	order    []*routeBuild
	// defaultRoutes are the default-backend routes, whose listeners finish picks.
	defaultRoutes []*routeBuild
	// tlsHosts are the hosts any Ingress has TLS for: ingress-nginx redirects HTTP to HTTPS on
	// a host's paths when its server has a certificate, whichever Ingress brought it.
	tlsHosts map[string]bool
}

func (c *converter) add(sev Severity, ing *networkingv1.Ingress, field, msg string) {
	c.res.Findings = append(c.res.Findings, Finding{Severity: sev, Object: "Ingress " + ing.Namespace + "/" + ing.Name, Field: field, Message: msg})
}

func annField(name string) string { return "metadata.annotations[" + name + "]" }

type gatewayBuild struct {
	gw *gwv1.Gateway
	// https listeners by hostname ("" for TLS without hosts), with the Ingress that set the secret.
	https map[string]httpsListener
}

type httpsListener struct {
	name   string
	secret string
	from   string
}

func (c *converter) gateway(ns string) *gatewayBuild {
	if g, ok := c.gateways[ns]; ok {
		return g
	}
	g := &gatewayBuild{https: map[string]httpsListener{}, gw: &gwv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: c.opts.GatewayName},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(c.opts.GatewayClass),
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}}
	c.gateways[ns] = g
	return g
}

// listenerName is "https" for a TLS entry without hosts, else https-<host as a DNS label>.
func listenerName(host string) string {
	if host == "" {
		return "https"
	}
	return "https-" + hostLabel(host)
}

func hostLabel(host string) string {
	h := strings.ReplaceAll(host, "*", "wildcard")
	h = strings.ReplaceAll(h, ".", "-")
	return strings.ToLower(h)
}

// tls adds the HTTPS listeners of one Ingress's spec.tls.
func (c *converter) tls(st *ingressState) {
	g := c.gateway(st.ing.Namespace)
	for i, t := range st.ing.Spec.TLS {
		field := fmt.Sprintf("spec.tls[%d]", i)
		if t.SecretName == "" {
			c.add(Unsupported, st.ing, field+".secretName", "no secretName: ingress-nginx serves its default certificate, a Gateway listener needs a certificateRef")
			continue
		}
		hosts := t.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			if have, ok := g.https[h]; ok {
				if have.secret != t.SecretName {
					c.add(Unsupported, st.ing, field, fmt.Sprintf("host %q already has certificate Secret %q from %s; a listener has one certificate per host, %q is not used", h, have.secret, have.from, t.SecretName))
				}
				continue
			}
			name := listenerName(h)
			g.https[h] = httpsListener{name: name, secret: t.SecretName, from: st.obj}
			mode := gwv1.TLSModeTerminate
			l := gwv1.Listener{
				Name:     gwv1.SectionName(name),
				Port:     443,
				Protocol: gwv1.HTTPSProtocolType,
				TLS: &gwv1.ListenerTLSConfig{
					Mode:            &mode,
					CertificateRefs: []gwv1.SecretObjectReference{{Name: gwv1.ObjectName(t.SecretName)}},
				},
			}
			if h != "" {
				hn := gwv1.Hostname(h)
				l.Hostname = &hn
			}
			g.gw.Spec.Listeners = append(g.gw.Spec.Listeners, l)
		}
	}
}

func (c *converter) finish() {
	nss := make([]string, 0, len(c.gateways))
	for ns := range c.gateways {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	for _, ns := range nss {
		g := c.gateways[ns]
		ls := g.gw.Spec.Listeners
		slices.SortStableFunc(ls[1:], func(a, b gwv1.Listener) int { return cmp.Compare(a.Name, b.Name) })
		c.res.Gateways = append(c.res.Gateways, g.gw)
	}
	c.defaultBackendParents()
	for _, rb := range c.order {
		if len(rb.route.Spec.Rules) == 0 {
			continue
		}
		c.res.HTTPRoutes = append(c.res.HTTPRoutes, rb.route)
	}
	slices.SortStableFunc(c.res.HTTPRoutes, func(a, b *gwv1.HTTPRoute) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// defaultBackendParents attaches the default-backend routes. On the hostless listeners a
// route without hostnames loses to every route naming the request's host, as a default backend
// should. On an HTTPS listener for one host it would inherit that hostname and tie with the
// host's own "/" rule (the older route winning), so it attaches there only when no Ingress
// routes "/" on that host: then it answers exactly what no rule matches.
func (c *converter) defaultBackendParents() {
	for _, rb := range c.defaultRoutes {
		ns := rb.route.Namespace
		g := c.gateways[ns]
		hosts := make([]string, 0, len(g.https))
		for h := range g.https {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		var sections []string
		shadowed := false
		for _, h := range hosts {
			if h != "" && c.catchAll(ns, h) {
				shadowed = true
				continue
			}
			sections = append(sections, g.https[h].name)
		}
		if !shadowed {
			continue // every listener: the parentRef without sectionName stays
		}
		refs := []gwv1.ParentReference{{Name: gwv1.ObjectName(c.opts.GatewayName), SectionName: ptr.To(gwv1.SectionName("http"))}}
		for _, sec := range sections {
			refs = append(refs, gwv1.ParentReference{Name: gwv1.ObjectName(c.opts.GatewayName), SectionName: ptr.To(gwv1.SectionName(sec))})
		}
		rb.route.Spec.ParentRefs = refs
	}
}

// catchAll reports whether a primary Ingress routes every path of host ("/" as a prefix).
func (c *converter) catchAll(ns, host string) bool {
	_, ok := c.rules[ruleKey(ns, host, &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("/")})]
	return ok
}
