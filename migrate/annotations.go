package migrate

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// NginxPrefix is the prefix of ingress-nginx's annotations.
const NginxPrefix = "nginx.ingress.kubernetes.io/"

// annotations are the ingress-nginx annotations of one Ingress that migrate understands.
type annotations struct {
	canary              bool
	canaryWeight        int32
	hasWeight           bool
	canaryTotal         int32
	canaryHeader        string
	canaryHeaderValue   string
	canaryHeaderPattern string

	rewriteTarget string
	hasRewrite    bool
	useRegex      bool
	// sslRedirect is nil when not set (ingress-nginx's default: redirect hosts with TLS).
	sslRedirect      *bool
	forceSSLRedirect bool
	redirect         *redirectSpec
	backendProtocol  string
}

type redirectSpec struct {
	annotation string
	url        *url.URL
	code       int
}

// ignoredAnnotations are annotations that do not describe routing.
var ignoredAnnotations = []string{
	"kubernetes.io/ingress.class",
	"kubectl.kubernetes.io/last-applied-configuration",
}

var captureGroup = regexp.MustCompile(`\$[0-9{]`)

func (c *converter) parseAnnotations(st *ingressState) annotations {
	a := annotations{canaryTotal: 100}
	ing := st.ing
	keys := make([]string, 0, len(ing.Annotations))
	for k := range ing.Annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	boolean := func(k, v string) (bool, bool) {
		switch v {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		c.add(Unsupported, ing, annField(k), fmt.Sprintf("value %q is not true or false", v))
		return false, false
	}
	var permanent, temporal *redirectSpec
	permanentCode, temporalCode := 301, 302
	for _, k := range keys {
		v := ing.Annotations[k]
		name, ok := strings.CutPrefix(k, NginxPrefix)
		if !ok {
			if !slices.Contains(ignoredAnnotations, k) {
				c.add(Note, ing, annField(k), "not an ingress-nginx annotation: not carried over to the Gateway API objects")
			}
			continue
		}
		switch name {
		case "canary":
			a.canary, _ = boolean(k, v)
		case "canary-weight":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("value %q is not a non-negative integer", v))
				continue
			}
			a.canaryWeight, a.hasWeight = int32(n), true
		case "canary-weight-total":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n <= 0 {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("value %q is not a positive integer", v))
				continue
			}
			a.canaryTotal = int32(n)
		case "canary-by-header":
			a.canaryHeader = v
		case "canary-by-header-value":
			a.canaryHeaderValue = v
		case "canary-by-header-pattern":
			if _, err := regexp.Compile(v); err != nil {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("not a regular expression: %v", err))
				continue
			}
			a.canaryHeaderPattern = v
		case "rewrite-target":
			if captureGroup.MatchString(v) {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("%q uses regex capture groups; an HTTPRoute URLRewrite can only replace the whole path or the matched prefix", v))
				continue
			}
			a.rewriteTarget, a.hasRewrite = v, true
		case "use-regex":
			a.useRegex, _ = boolean(k, v)
		case "ssl-redirect":
			b, ok := boolean(k, v)
			if ok {
				a.sslRedirect = &b
			}
		case "force-ssl-redirect":
			a.forceSSLRedirect, _ = boolean(k, v)
		case "permanent-redirect", "temporal-redirect":
			u, err := url.Parse(v)
			if err != nil || u.Scheme == "" || u.Host == "" {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("%q is not an absolute URL", v))
				continue
			}
			if u.RawQuery != "" || u.Fragment != "" {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("%q has a query or fragment; a RequestRedirect cannot set them", v))
				continue
			}
			rs := &redirectSpec{annotation: k, url: u}
			if name == "permanent-redirect" {
				permanent = rs
			} else {
				temporal = rs
			}
		case "permanent-redirect-code", "temporal-redirect-code":
			n, err := strconv.Atoi(v)
			if err != nil {
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("value %q is not a status code", v))
				continue
			}
			switch n {
			case 301, 302, 303, 307, 308:
			default:
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("status %d: a RequestRedirect answers 301, 302, 303, 307 or 308", n))
				continue
			}
			if name == "permanent-redirect-code" {
				permanentCode = n
			} else {
				temporalCode = n
			}
		case "backend-protocol":
			switch strings.ToUpper(v) {
			case "HTTP", "GRPC", "HTTPS", "GRPCS", "AJP", "FCGI":
				a.backendProtocol = strings.ToUpper(v)
			default:
				c.add(Unsupported, ing, annField(k), fmt.Sprintf("unknown backend protocol %q", v))
			}
		default:
			c.add(Unsupported, ing, annField(k), "gatecheck migrate does not translate this annotation: the Gateway API objects written would not do what it asks")
		}
	}
	// ingress-nginx: permanent-redirect wins over temporal-redirect.
	switch {
	case permanent != nil:
		permanent.code = permanentCode
		a.redirect = permanent
		if temporal != nil {
			c.add(Note, ing, annField(temporal.annotation), "ignored: permanent-redirect takes precedence, as in ingress-nginx")
		}
	case temporal != nil:
		temporal.code = temporalCode
		a.redirect = temporal
	}
	if !a.canary {
		for _, k := range []string{"canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value", "canary-by-header-pattern"} {
			if _, ok := ing.Annotations[NginxPrefix+k]; ok {
				c.add(Note, ing, annField(NginxPrefix+k), "ignored: the Ingress is not a canary (canary: \"true\" is not set), as in ingress-nginx")
			}
		}
		a.hasWeight, a.canaryHeader = false, ""
	} else {
		// A canary Ingress only contributes backends to its primary's paths; ingress-nginx ignores
		// its other annotations.
		for _, k := range keys {
			name, ok := strings.CutPrefix(k, NginxPrefix)
			if ok && !strings.HasPrefix(name, "canary") {
				c.add(Note, ing, annField(k), "ignored on a canary Ingress, as in ingress-nginx: the primary Ingress's annotations apply")
			}
		}
		if a.canaryHeaderValue != "" && a.canaryHeader == "" || a.canaryHeaderPattern != "" && a.canaryHeader == "" {
			c.add(Unsupported, ing, annField(NginxPrefix+"canary-by-header"), "canary-by-header-value/-pattern without canary-by-header")
		}
		if a.hasWeight && a.canaryWeight > a.canaryTotal {
			c.add(Unsupported, ing, annField(NginxPrefix+"canary-weight"), fmt.Sprintf("weight %d is above the total %d", a.canaryWeight, a.canaryTotal))
			a.hasWeight = false
		}
	}
	return a
}
