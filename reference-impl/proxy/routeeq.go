package proxy

import (
	"bytes"
	"slices"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Equality and deep copies of routes, for tableCache. A cached route is a deep copy because
// its equality to the next snapshot's route is what proves the cached compiled form still
// fits: comparing against the snapshot's own memory would miss a route modified in place.
// Strings are shared (they are immutable); slices and pointed-to structs are copied. Every
// field of every type here must be compared and copied; TestRouteEqualityCoversEveryField
// walks the types by reflection and fails when a field is missed.

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func sliceEq[T any](a, b []T, eq func(a, b *T) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !eq(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

func cloneSlice[T any](s []T, clone func(*T) T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i := range s {
		out[i] = clone(&s[i])
	}
	return out
}

func sameMeta(a, b *ir.RouteMeta) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.CreationTimestamp == b.CreationTimestamp &&
		slices.Equal(a.Hostnames, b.Hostnames)
}

func cloneMeta(m *ir.RouteMeta) ir.RouteMeta {
	out := *m
	out.Hostnames = slices.Clone(m.Hostnames)
	return out
}

// sameHTTPRoute and what it calls loop by hand where sliceEq would do: they run for every
// route of every snapshot applied, and the generic calls were not inlined.
func sameHTTPRoute(a, b *ir.HTTPRoute) bool {
	if !sameMeta(&a.RouteMeta, &b.RouteMeta) || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Rules {
		if !sameHTTPRule(&a.Rules[i], &b.Rules[i]) {
			return false
		}
	}
	return true
}

func cloneHTTPRoute(r *ir.HTTPRoute) ir.HTTPRoute {
	return ir.HTTPRoute{RouteMeta: cloneMeta(&r.RouteMeta), Rules: cloneSlice(r.Rules, cloneHTTPRule)}
}

func sameHTTPRule(a, b *ir.HTTPRule) bool {
	if a.Index != b.Index || a.Name != b.Name || !sameRetry(a.Retry, b.Retry) || len(a.Matches) != len(b.Matches) || len(a.Backends) != len(b.Backends) || !ptrEq(a.Timeouts, b.Timeouts) {
		return false
	}
	for i := range a.Matches {
		if !sameHTTPMatch(&a.Matches[i], &b.Matches[i]) {
			return false
		}
	}
	for i := range a.Backends {
		if !sameBackend(&a.Backends[i], &b.Backends[i]) {
			return false
		}
	}
	return sliceEq(a.Filters, b.Filters, sameFilter)
}

func cloneHTTPRule(r *ir.HTTPRule) ir.HTTPRule {
	return ir.HTTPRule{Index: r.Index, Name: r.Name, Matches: cloneSlice(r.Matches, cloneHTTPMatch), Filters: cloneSlice(r.Filters, cloneFilter),
		Backends: cloneSlice(r.Backends, cloneBackend), Timeouts: clonePtr(r.Timeouts), Retry: cloneRetry(r.Retry)}
}

func sameRetry(a, b *ir.Retry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Attempts == b.Attempts && a.Backoff == b.Backoff && slices.Equal(a.Codes, b.Codes)
}

func cloneRetry(r *ir.Retry) *ir.Retry {
	if r == nil {
		return nil
	}
	return &ir.Retry{Codes: slices.Clone(r.Codes), Attempts: r.Attempts, Backoff: r.Backoff}
}

func sameHTTPMatch(a, b *ir.HTTPMatch) bool {
	return ptrEq(a.Path, b.Path) && slices.Equal(a.Headers, b.Headers) && slices.Equal(a.QueryParams, b.QueryParams) && a.Method == b.Method
}

func cloneHTTPMatch(m *ir.HTTPMatch) ir.HTTPMatch {
	return ir.HTTPMatch{Path: clonePtr(m.Path), Headers: slices.Clone(m.Headers), QueryParams: slices.Clone(m.QueryParams), Method: m.Method}
}

func sameFilter(a, b *ir.Filter) bool {
	return a.Type == b.Type && sameHeaderModifier(a.RequestHeaderModifier, b.RequestHeaderModifier) &&
		sameHeaderModifier(a.ResponseHeaderModifier, b.ResponseHeaderModifier) && sameRedirect(a.RequestRedirect, b.RequestRedirect) &&
		sameURLRewrite(a.URLRewrite, b.URLRewrite) && sameMirror(a.RequestMirror, b.RequestMirror) && sameCORS(a.CORS, b.CORS)
}

func sameCORS(a, b *ir.CORS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.AllowOrigins, b.AllowOrigins) && a.AllowCredentials == b.AllowCredentials && slices.Equal(a.AllowMethods, b.AllowMethods) &&
		slices.Equal(a.AllowHeaders, b.AllowHeaders) && slices.Equal(a.ExposeHeaders, b.ExposeHeaders) && a.MaxAge == b.MaxAge
}

func cloneFilter(f *ir.Filter) ir.Filter {
	out := ir.Filter{Type: f.Type}
	out.RequestHeaderModifier = cloneHeaderModifier(f.RequestHeaderModifier)
	out.ResponseHeaderModifier = cloneHeaderModifier(f.ResponseHeaderModifier)
	if r := f.RequestRedirect; r != nil {
		out.RequestRedirect = &ir.Redirect{Scheme: clonePtr(r.Scheme), Hostname: clonePtr(r.Hostname), Path: clonePtr(r.Path),
			Port: clonePtr(r.Port), StatusCode: r.StatusCode}
	}
	if u := f.URLRewrite; u != nil {
		out.URLRewrite = &ir.URLRewrite{Hostname: clonePtr(u.Hostname), Path: clonePtr(u.Path)}
	}
	if m := f.RequestMirror; m != nil {
		out.RequestMirror = &ir.Mirror{Backend: cloneBackend(&m.Backend), Percent: m.Percent}
	}
	if c := f.CORS; c != nil {
		out.CORS = &ir.CORS{AllowOrigins: slices.Clone(c.AllowOrigins), AllowCredentials: c.AllowCredentials, AllowMethods: slices.Clone(c.AllowMethods),
			AllowHeaders: slices.Clone(c.AllowHeaders), ExposeHeaders: slices.Clone(c.ExposeHeaders), MaxAge: c.MaxAge}
	}
	return out
}

func sameHeaderModifier(a, b *ir.HeaderModifier) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Set, b.Set) && slices.Equal(a.Add, b.Add) && slices.Equal(a.Remove, b.Remove)
}

func cloneHeaderModifier(h *ir.HeaderModifier) *ir.HeaderModifier {
	if h == nil {
		return nil
	}
	return &ir.HeaderModifier{Set: slices.Clone(h.Set), Add: slices.Clone(h.Add), Remove: slices.Clone(h.Remove)}
}

func sameRedirect(a, b *ir.Redirect) bool {
	if a == nil || b == nil {
		return a == b
	}
	return ptrEq(a.Scheme, b.Scheme) && ptrEq(a.Hostname, b.Hostname) && ptrEq(a.Path, b.Path) && ptrEq(a.Port, b.Port) &&
		a.StatusCode == b.StatusCode
}

func sameURLRewrite(a, b *ir.URLRewrite) bool {
	if a == nil || b == nil {
		return a == b
	}
	return ptrEq(a.Hostname, b.Hostname) && ptrEq(a.Path, b.Path)
}

func sameMirror(a, b *ir.Mirror) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Percent == b.Percent && sameBackend(&a.Backend, &b.Backend)
}

func sameBackend(a, b *ir.Backend) bool {
	if a.Name != b.Name || a.Weight != b.Weight || a.Protocol != b.Protocol || a.Invalid != b.Invalid || len(a.Endpoints) != len(b.Endpoints) || !sameBackendTLS(a.TLS, b.TLS) {
		return false
	}
	for i := range a.Endpoints {
		if a.Endpoints[i] != b.Endpoints[i] {
			return false
		}
	}
	return len(a.Filters) == 0 && len(b.Filters) == 0 || sliceEq(a.Filters, b.Filters, sameFilter)
}

func cloneBackend(b *ir.Backend) ir.Backend {
	out := *b
	out.Endpoints = slices.Clone(b.Endpoints)
	out.Filters = cloneSlice(b.Filters, cloneFilter)
	if b.TLS != nil {
		t := *b.TLS
		t.CACertPEM = bytes.Clone(t.CACertPEM)
		t.SubjectAltNames = slices.Clone(t.SubjectAltNames)
		out.TLS = &t
	}
	return out
}

func sameBackendTLS(a, b *ir.BackendTLS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Policy == b.Policy && a.ServerName == b.ServerName && a.SystemCAs == b.SystemCAs && bytes.Equal(a.CACertPEM, b.CACertPEM) &&
		slices.Equal(a.SubjectAltNames, b.SubjectAltNames)
}

func sameGRPCRoute(a, b *ir.GRPCRoute) bool {
	return sameMeta(&a.RouteMeta, &b.RouteMeta) && sliceEq(a.Rules, b.Rules, sameGRPCRule)
}

func cloneGRPCRoute(r *ir.GRPCRoute) ir.GRPCRoute {
	return ir.GRPCRoute{RouteMeta: cloneMeta(&r.RouteMeta), Rules: cloneSlice(r.Rules, cloneGRPCRule)}
}

func sameGRPCRule(a, b *ir.GRPCRule) bool {
	return a.Index == b.Index && a.Name == b.Name && sliceEq(a.Matches, b.Matches, sameGRPCMatch) && sliceEq(a.Filters, b.Filters, sameFilter) &&
		sliceEq(a.Backends, b.Backends, sameBackend)
}

func cloneGRPCRule(r *ir.GRPCRule) ir.GRPCRule {
	return ir.GRPCRule{Index: r.Index, Name: r.Name, Matches: cloneSlice(r.Matches, cloneGRPCMatch), Filters: cloneSlice(r.Filters, cloneFilter),
		Backends: cloneSlice(r.Backends, cloneBackend)}
}

func sameGRPCMatch(a, b *ir.GRPCMatch) bool {
	return ptrEq(a.Method, b.Method) && slices.Equal(a.Headers, b.Headers)
}

func cloneGRPCMatch(m *ir.GRPCMatch) ir.GRPCMatch {
	return ir.GRPCMatch{Method: clonePtr(m.Method), Headers: slices.Clone(m.Headers)}
}

func sameCerts(a []ir.Certificate, b *ir.TLS) bool {
	var bs []ir.Certificate
	if b != nil {
		bs = b.Certificates
	}
	return sliceEq(a, bs, func(x, y *ir.Certificate) bool {
		return x.Name == y.Name && bytes.Equal(x.CertPEM, y.CertPEM) && bytes.Equal(x.KeyPEM, y.KeyPEM)
	})
}

func cloneCerts(t *ir.TLS) []ir.Certificate {
	if t == nil {
		return nil
	}
	return cloneSlice(t.Certificates, func(c *ir.Certificate) ir.Certificate {
		return ir.Certificate{Name: c.Name, CertPEM: bytes.Clone(c.CertPEM), KeyPEM: bytes.Clone(c.KeyPEM)}
	})
}
