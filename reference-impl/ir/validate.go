package ir

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Validate reports every structural problem in the snapshot, each naming where it is
// (listener, route, rule, field). The proxy refuses a snapshot or update that fails validation
// and keeps serving the previous one (it validates a delta's Gateway-level part and upserted
// routes, package delta); the controller validates what no proxy accepted (see
// controller/delivery.go), so a snapshot is validated once on the propagation path.
func (s *Snapshot) Validate() error {
	if s == nil {
		return errors.New("snapshot is nil")
	}
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Version < 0 {
		add("version: must be >= 0, got %d", s.Version)
	}
	if s.Gateway.Name == "" || s.Gateway.Namespace == "" {
		add("gateway: namespace and name are required, got %q", s.Gateway.String())
	}
	if c := s.BackendClientCertificate; c != nil {
		if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
			add("backendClientCertificate %q: not a valid certificate and key: %v", c.Name, err)
		}
	}
	names := map[string]bool{}
	portProto := map[int32]Protocol{}
	portClient := map[int32]*Listener{} // frontendtls.go
	for i, l := range s.Listeners {
		where := loc(func() string { return fmt.Sprintf("listeners[%d] %q", i, l.Name) })
		if l.Name == "" {
			add("listeners[%d].name: required", i)
		} else if names[l.Name] {
			add("%s.name: duplicate listener name", where())
		}
		names[l.Name] = true
		if l.Port < 1 || l.Port > 65535 {
			add("%s.port: %d out of range 1-65535", where(), l.Port)
		}
		switch l.Protocol {
		case ProtocolHTTP, ProtocolHTTPS, ProtocolTCP, ProtocolUDP, ProtocolTLS:
		default:
			add("%s.protocol: unsupported %q (want HTTP, HTTPS, TCP, UDP or TLS)", where(), l.Protocol)
		}
		// HTTP, HTTPS and TLS share nothing on one socket, and TCP and UDP own their port alone.
		if p, ok := portProto[l.Port]; ok && (p != l.Protocol || p == ProtocolTCP || p == ProtocolUDP) {
			add("%s.port: %d already used by a %s listener", where(), l.Port, p)
		}
		portProto[l.Port] = l.Protocol
		if l.Hostname != "" {
			if err := validHostname(l.Hostname); err != nil {
				add("%s.hostname: %v", where(), err)
			}
		}
		if l.Protocol == ProtocolHTTPS && (l.TLS == nil || len(l.TLS.Certificates) == 0) {
			add("%s.tls: HTTPS listener needs at least one certificate", where())
		}
		if l.TLS != nil {
			for j, c := range l.TLS.Certificates {
				if len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
					add("%s.tls.certificates[%d] %q: certPEM and keyPEM are required", where(), j, c.Name)
				}
			}
		}
		errs = append(errs, l.validateClientValidation(where, portClient)...)
		if l.Protocol == ProtocolTCP && (len(l.HTTPRoutes) > 0 || len(l.GRPCRoutes) > 0) {
			add("%s: TCP listener cannot carry HTTP or gRPC routes", where())
		}
		if l.Protocol != ProtocolTCP && len(l.TCPRoutes) > 0 {
			add("%s: %s listener cannot carry TCP routes", where(), l.Protocol)
		}
		errs = append(errs, l.validateStream(where)...) // stream.go
		for j, r := range l.HTTPRoutes {
			rw := where.sub(".httpRoutes[%d] %s/%s", j, r.Namespace, r.Name)
			errs = append(errs, r.RouteMeta.validate(rw)...)
			for k, rule := range r.Rules {
				errs = append(errs, rule.validate(rw.sub(".rules[%d]", k))...)
			}
		}
		for j, r := range l.GRPCRoutes {
			rw := where.sub(".grpcRoutes[%d] %s/%s", j, r.Namespace, r.Name)
			errs = append(errs, r.RouteMeta.validate(rw)...)
			for k, rule := range r.Rules {
				errs = append(errs, rule.validate(rw.sub(".rules[%d]", k))...)
			}
		}
		for j, r := range l.TCPRoutes {
			rw := where.sub(".tcpRoutes[%d] %s/%s", j, r.Namespace, r.Name)
			errs = append(errs, r.RouteMeta.validate(rw)...)
			errs = append(errs, validateBackends(rw, r.Backends)...)
		}
	}
	return errors.Join(errs...)
}

func (m RouteMeta) validate(where loc) []error {
	var errs []error
	if m.Namespace == "" || m.Name == "" {
		errs = append(errs, fmt.Errorf("%s: namespace and name are required", where()))
	}
	for i, h := range m.Hostnames {
		if err := validHostname(h); err != nil {
			errs = append(errs, fmt.Errorf("%s.hostnames[%d]: %v", where(), i, err))
		}
	}
	return errs
}

func (r HTTPRule) validate(where loc) []error {
	var errs []error
	if r.Name != "" && !sectionName(r.Name) {
		errs = append(errs, fmt.Errorf("%s.name: %q is not a section name (lower-case letters, digits and '-', up to 253)", where(), r.Name))
	}
	for i, m := range r.Matches {
		mw := where.sub(".matches[%d]", i)
		if m.Path != nil {
			switch m.Path.Type {
			case MatchExact, MatchPathPrefix:
				if !strings.HasPrefix(m.Path.Value, "/") {
					errs = append(errs, fmt.Errorf("%s.path.value: %q must start with /", mw(), m.Path.Value))
				}
				if bad := badPathValue(m.Path.Value); bad != "" {
					errs = append(errs, fmt.Errorf("%s.path.value: %q %s", mw(), m.Path.Value, bad))
				}
			case MatchRegularExpression:
				if _, err := regexp.Compile(m.Path.Value); err != nil {
					errs = append(errs, fmt.Errorf("%s.path.value: invalid regular expression: %v", mw(), err))
				}
			default:
				errs = append(errs, fmt.Errorf("%s.path.type: unsupported %q", mw(), m.Path.Type))
			}
		}
		errs = append(errs, validateHeaderMatches(mw.sub(".headers"), m.Headers)...)
		errs = append(errs, validateHeaderMatches(mw.sub(".queryParams"), m.QueryParams)...)
		if m.Method != "" && strings.ToUpper(m.Method) != m.Method {
			errs = append(errs, fmt.Errorf("%s.method: %q must be upper case", mw(), m.Method))
		}
	}
	errs = append(errs, validateFilters(where.sub(".filters"), r.Filters)...)
	errs = append(errs, validateBackends(where, r.Backends)...)
	if rt := r.Retry; rt != nil {
		if rt.Attempts < 1 || rt.Attempts > 100 {
			errs = append(errs, fmt.Errorf("%s.retry.attempts: %d (want 1 to 100)", where(), rt.Attempts))
		}
		for i, c := range rt.Codes {
			if c < 400 || c > 599 {
				errs = append(errs, fmt.Errorf("%s.retry.codes[%d]: %d (want 400 to 599)", where(), i, c))
			}
		}
		if rt.Backoff < 0 {
			errs = append(errs, fmt.Errorf("%s.retry.backoff: %s is negative", where(), rt.Backoff.D()))
		}
	}
	if r.Timeouts != nil {
		if r.Timeouts.Request < 0 || r.Timeouts.BackendRequest < 0 {
			errs = append(errs, fmt.Errorf("%s.timeouts: must not be negative", where()))
		}
		if r.Timeouts.Request > 0 && r.Timeouts.BackendRequest > r.Timeouts.Request {
			errs = append(errs, fmt.Errorf("%s.timeouts.backendRequest: %s exceeds request timeout %s", where(), r.Timeouts.BackendRequest.D(), r.Timeouts.Request.D()))
		}
	}
	return errs
}

func (r GRPCRule) validate(where loc) []error {
	var errs []error
	if r.Name != "" && !sectionName(r.Name) {
		errs = append(errs, fmt.Errorf("%s.name: %q is not a section name (lower-case letters, digits and '-', up to 253)", where(), r.Name))
	}
	for i, m := range r.Matches {
		mw := where.sub(".matches[%d]", i)
		if m.Method != nil {
			switch m.Method.Type {
			case MatchExact, "":
			case MatchRegularExpression:
				for _, v := range []string{m.Method.Service, m.Method.Method} {
					if _, err := regexp.Compile(v); err != nil {
						errs = append(errs, fmt.Errorf("%s.method: invalid regular expression %q: %v", mw(), v, err))
					}
				}
			default:
				errs = append(errs, fmt.Errorf("%s.method.type: unsupported %q", mw(), m.Method.Type))
			}
		}
		errs = append(errs, validateHeaderMatches(mw.sub(".headers"), m.Headers)...)
	}
	errs = append(errs, validateFilters(where.sub(".filters"), r.Filters)...)
	errs = append(errs, validateBackends(where, r.Backends)...)
	return errs
}

func validateHeaderMatches(where loc, hs []HeaderMatch) []error {
	var errs []error
	for i, h := range hs {
		if h.Name == "" {
			errs = append(errs, fmt.Errorf("%s[%d].name: required", where(), i))
		}
		switch h.Type {
		case MatchExact, "":
		case MatchRegularExpression:
			if _, err := regexp.Compile(h.Value); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d].value: invalid regular expression: %v", where(), i, err))
			}
		default:
			errs = append(errs, fmt.Errorf("%s[%d].type: unsupported %q", where(), i, h.Type))
		}
	}
	return errs
}

func validateFilters(where loc, fs []Filter) []error {
	var errs []error
	for i, f := range fs {
		fw := where.sub("[%d]", i)
		set := 0
		for _, p := range []bool{f.RequestHeaderModifier != nil, f.ResponseHeaderModifier != nil, f.RequestRedirect != nil, f.URLRewrite != nil, f.RequestMirror != nil, f.CORS != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			errs = append(errs, fmt.Errorf("%s: exactly one filter body must be set, got %d", fw(), set))
			continue
		}
		ok := false
		switch f.Type {
		case FilterRequestHeaderModifier:
			ok = f.RequestHeaderModifier != nil
			if ok {
				errs = append(errs, f.RequestHeaderModifier.validate(fw.sub(".requestHeaderModifier"))...)
			}
		case FilterResponseHeaderModifier:
			ok = f.ResponseHeaderModifier != nil
			if ok {
				errs = append(errs, f.ResponseHeaderModifier.validate(fw.sub(".responseHeaderModifier"))...)
			}
		case FilterRequestRedirect:
			ok = f.RequestRedirect != nil
			if ok {
				rd := f.RequestRedirect
				switch rd.StatusCode {
				case 0, http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
				default:
					errs = append(errs, fmt.Errorf("%s.requestRedirect.statusCode: %d (want 301, 302, 303, 307 or 308)", fw(), rd.StatusCode))
				}
				if rd.Scheme != nil && *rd.Scheme != "http" && *rd.Scheme != "https" {
					errs = append(errs, fmt.Errorf("%s.requestRedirect.scheme: %q (want http or https)", fw(), *rd.Scheme))
				}
				if rd.Port != nil && (*rd.Port < 1 || *rd.Port > 65535) {
					errs = append(errs, fmt.Errorf("%s.requestRedirect.port: %d out of range", fw(), *rd.Port))
				}
				errs = append(errs, rd.Path.validate(fw.sub(".requestRedirect.path"))...)
			}
		case FilterURLRewrite:
			ok = f.URLRewrite != nil
			if ok {
				errs = append(errs, f.URLRewrite.Path.validate(fw.sub(".urlRewrite.path"))...)
			}
		case FilterRequestMirror:
			ok = f.RequestMirror != nil
			if ok {
				m := f.RequestMirror
				if m.Percent < 0 || m.Percent > 100 {
					errs = append(errs, fmt.Errorf("%s.requestMirror.percent: %v out of range 0-100", fw(), m.Percent))
				}
				errs = append(errs, validateBackends(fw.sub(".requestMirror"), []Backend{m.Backend})...)
			}
		case FilterCORS:
			ok = f.CORS != nil
			if ok {
				for j, o := range f.CORS.AllowOrigins {
					if o != "*" && (!strings.Contains(o, "://") || strings.Count(o, "*") > 1) {
						errs = append(errs, fmt.Errorf("%s.cors.allowOrigins[%d]: %q is not * or scheme://host[:port] with at most one *", fw(), j, o))
					}
				}
				if f.CORS.MaxAge < 0 {
					errs = append(errs, fmt.Errorf("%s.cors.maxAge: %d is negative", fw(), f.CORS.MaxAge))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("%s.type: unsupported %q", fw(), f.Type))
			continue
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s: type %s but its body is not set", fw(), f.Type))
		}
	}
	return errs
}

func (h *HeaderModifier) validate(where loc) []error {
	var errs []error
	for i, x := range append(append([]Header{}, h.Set...), h.Add...) {
		if x.Name == "" || strings.ContainsAny(x.Name, " :\r\n") {
			errs = append(errs, fmt.Errorf("%s: header %d: invalid name %q", where(), i, x.Name))
		}
		if strings.ContainsAny(x.Value, "\r\n") {
			errs = append(errs, fmt.Errorf("%s: header %q: value contains a line break", where(), x.Name))
		}
	}
	return errs
}

func (p *PathModifier) validate(where loc) []error {
	if p == nil {
		return nil
	}
	switch p.Type {
	case ReplaceFullPath:
		if !strings.HasPrefix(p.ReplaceFullPath, "/") {
			return []error{fmt.Errorf("%s.replaceFullPath: %q must start with /", where(), p.ReplaceFullPath)}
		}
	case ReplacePrefixMatch:
		if !strings.HasPrefix(p.ReplacePrefixMatch, "/") {
			return []error{fmt.Errorf("%s.replacePrefixMatch: %q must start with /", where(), p.ReplacePrefixMatch)}
		}
	default:
		return []error{fmt.Errorf("%s.type: unsupported %q", where(), p.Type)}
	}
	return nil
}

func validateBackends(where loc, bs []Backend) []error {
	var errs []error
	for i, b := range bs {
		bw := where.sub(".backends[%d] %q", i, b.Name)
		if b.Weight < 0 {
			errs = append(errs, fmt.Errorf("%s.weight: %d must be >= 0", bw(), b.Weight))
		}
		switch b.Protocol {
		case "", BackendHTTP1, BackendH2C:
		default:
			errs = append(errs, fmt.Errorf("%s.protocol: unsupported %q", bw(), b.Protocol))
		}
		for j, e := range b.Endpoints {
			if net.ParseIP(e.Address) == nil {
				errs = append(errs, fmt.Errorf("%s.endpoints[%d].address: %q is not an IP address", bw(), j, e.Address))
			}
			if e.Port < 1 || e.Port > 65535 {
				errs = append(errs, fmt.Errorf("%s.endpoints[%d].port: %d out of range", bw(), j, e.Port))
			}
		}
		errs = append(errs, validateFilters(bw.sub(".filters"), b.Filters)...)
		if b.TLS != nil {
			errs = append(errs, b.TLS.validate(bw.sub(".tls"))...)
		}
	}
	return errs
}

func (t *BackendTLS) validate(where loc) []error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s%s", where(), fmt.Sprintf(format, a...)))
	}
	if err := validHostname(t.ServerName); err != nil || strings.HasPrefix(t.ServerName, "*") {
		add(".serverName: %q is not a hostname", t.ServerName)
	}
	switch {
	case t.SystemCAs && len(t.CACertPEM) > 0:
		add(": caCertPEM and systemCAs are exclusive")
	case !t.SystemCAs && !x509.NewCertPool().AppendCertsFromPEM(t.CACertPEM):
		add(".caCertPEM: no PEM certificate in it (and systemCAs is false)")
	}
	for i, san := range t.SubjectAltNames {
		switch {
		case (san.Hostname == "") == (san.URI == ""):
			add(".subjectAltNames[%d]: exactly one of hostname and uri must be set", i)
		case san.Hostname != "":
			if err := validHostname(san.Hostname); err != nil {
				add(".subjectAltNames[%d].hostname: %v", i, err)
			}
		default:
			if u, err := url.Parse(san.URI); err != nil || u.Scheme == "" {
				add(".subjectAltNames[%d].uri: %q is not an absolute URI", i, san.URI)
			}
		}
	}
	return errs
}

// loc names where in the snapshot a problem is. It is built only when an error is reported:
// formatting the location of every listener, route, rule and match on a valid snapshot was half
// the cost of validating it, and the proxy validates every snapshot it applies.
type loc func() string

func (l loc) sub(format string, a ...any) loc {
	return func() string { return l() + fmt.Sprintf(format, a...) }
}

// dnsLabel reports whether s is a lower-case RFC 1123 label (hand-written: the regular
// expression was a fifth of validation time).
func dnsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validHostname accepts a lower-case DNS name, optionally with a leading "*." wildcard label,
// and no IP addresses, as the Gateway API's Hostname type does.
func validHostname(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", h)
	}
	if net.ParseIP(h) != nil {
		return fmt.Errorf("%q is an IP address, not a hostname", h)
	}
	rest := strings.TrimPrefix(h, "*.")
	for _, label := range strings.Split(rest, ".") {
		if !dnsLabel(label) {
			return fmt.Errorf("%q: label %q is not a lower-case DNS label", h, label)
		}
	}
	return nil
}

// sectionName reports whether s is a Gateway API SectionName (a rule's name).
func sectionName(s string) bool {
	return len(s) > 0 && len(s) <= 253 && s[0] != '-' && s[len(s)-1] != '-' && dnsLabelChars(s)
}

// dnsLabelChars reports whether s has only the characters of a lower-case RFC 1123 label.
func dnsLabelChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// badPathValue applies the HTTPRoute CRD's CEL rules for Exact and PathPrefix values (which
// the API server enforces, so only a hand-written snapshot can break them): no empty, "." or
// ".." elements, no encoded slash, no fragment. It returns what is wrong, or "".
func badPathValue(v string) string {
	for _, s := range []string{"//", "/./", "/../", "%2f", "%2F", "#"} {
		if strings.Contains(v, s) {
			return "must not contain " + strconv.Quote(s)
		}
	}
	for _, s := range []string{"/..", "/."} {
		if strings.HasSuffix(v, s) {
			return "must not end with " + strconv.Quote(s)
		}
	}
	return ""
}
