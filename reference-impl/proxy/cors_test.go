package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// TestCORS runs HTTPRouteCORS's cases (tests/httproute-cors.go, the four routes of its
// manifest) through the proxy: preflights answered here with the allowed origin, methods,
// headers, exposed headers, max age and credentials; non-matching origins without
// Access-Control-Allow-Origin; other requests forwarded with the headers added; requests
// without Origin untouched.
func TestCORS(t *testing.T) {
	t.Parallel()
	v1 := startBackend(t, "v1")
	port := freePort(t)
	rule := func(i int, path string, c *ir.CORS) ir.HTTPRule {
		return ir.HTTPRule{Index: i, Matches: []ir.HTTPMatch{{Path: prefix(path)}}, Filters: []ir.Filter{{Type: ir.FilterCORS, CORS: c}},
			Backends: []ir.Backend{v1.irBackend(1)}}
	}
	rules := []ir.HTTPRule{
		rule(0, "/cors-1", &ir.CORS{AllowOrigins: []string{"https://www.foo.com", "https://*.bar.com"}, AllowMethods: []string{"GET", "OPTIONS"},
			AllowHeaders: []string{"x-header-1", "x-header-2"}, ExposeHeaders: []string{"x-header-3", "x-header-4"}, AllowCredentials: true, MaxAge: 3600}),
		rule(1, "/cors-2", &ir.CORS{AllowOrigins: []string{"https://www.foo.com"}, AllowMethods: []string{"*"}}),
		rule(2, "/cors-wildcard-origin", &ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"PUT"}}),
		rule(3, "/cors-wildcard-methods-headers-unauth", &ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}),
		rule(4, "/cors-wildcard-methods-headers", &ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, AllowCredentials: true}),
	}
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "cors"}, Rules: rules}}}))

	const absent = "<absent>"
	tests := []struct {
		name, method, path, origin, reqMethod, reqHeaders string
		code                                              int
		backend                                           bool
		want                                              map[string]string
	}{
		{"preflight exact origin", "OPTIONS", "/cors-1", "https://www.foo.com", "GET", "x-header-1, x-header-2", 204, false, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Methods": "GET, OPTIONS",
			"Access-Control-Allow-Headers": "x-header-1, x-header-2", "Access-Control-Expose-Headers": "x-header-3, x-header-4",
			"Access-Control-Max-Age": "3600", "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}},
		{"preflight wildcard origin", "OPTIONS", "/cors-1", "https://www.bar.com", "GET", "x-header-1", 204, false, map[string]string{
			"Access-Control-Allow-Origin": "https://www.bar.com", "Access-Control-Allow-Methods": "GET, OPTIONS"}},
		{"preflight wildcard does not cross a port", "OPTIONS", "/cors-1", "https://www.bar.com:8443", "GET", "", 204, false, map[string]string{
			"Access-Control-Allow-Origin": absent}},
		{"preflight other origin", "OPTIONS", "/cors-1", "https://foobar.com", "GET", "", 204, false, map[string]string{
			"Access-Control-Allow-Origin": absent, "Access-Control-Allow-Methods": absent}},
		{"simple exact origin", "GET", "/cors-1", "https://www.foo.com", "", "", 200, true, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers": "x-header-3, x-header-4", "Access-Control-Allow-Methods": absent}},
		{"simple wildcard origin", "GET", "/cors-1", "https://www.bar.com", "", "", 200, true, map[string]string{"Access-Control-Allow-Origin": "https://www.bar.com"}},
		{"simple other origin", "GET", "/cors-1", "https://foobar.com", "", "", 200, true, map[string]string{"Access-Control-Allow-Origin": absent}},
		{"no origin", "GET", "/cors-1", "", "", "", 200, true, map[string]string{"Access-Control-Allow-Origin": absent}},
		{"OPTIONS without request method is forwarded", "OPTIONS", "/cors-1", "https://www.foo.com", "", "", 200, true, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com"}},
		{"preflight any method", "OPTIONS", "/cors-2", "https://www.foo.com", "POST", "", 204, false, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Credentials": absent}},
		{"preflight any origin", "OPTIONS", "/cors-wildcard-origin", "https://foobar.com:12345", "PUT", "", 204, false, map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "PUT", "Access-Control-Allow-Credentials": absent}},
		{"simple any origin", "PUT", "/cors-wildcard-origin", "https://foobar.com:12345", "", "", 200, true, map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": absent}},
		{"preflight everything with credentials", "OPTIONS", "/cors-wildcard-methods-headers", "https://other.foo.com", "PUT", "x-header-1, x-header-2", 204, false, map[string]string{
			"Access-Control-Allow-Origin": "https://other.foo.com", "Access-Control-Allow-Methods": "PUT",
			"Access-Control-Allow-Headers": "x-header-1, x-header-2", "Access-Control-Allow-Credentials": "true"}},
		{"preflight everything without credentials", "OPTIONS", "/cors-wildcard-methods-headers-unauth", "https://other.foo.com", "PUT", "x-header-1, x-header-2", 204, false, map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "PUT",
			"Access-Control-Allow-Headers": "x-header-1, x-header-2", "Access-Control-Allow-Credentials": absent}},
		{"simple with credentials", "GET", "/cors-wildcard-methods-headers", "https://other.foo.com", "", "", 200, true, map[string]string{
			"Access-Control-Allow-Origin": "https://other.foo.com", "Access-Control-Allow-Credentials": "true"}},
	}
	for _, client := range []struct {
		name string
		c    *http.Client
	}{{"http1", h1Client()}, {"h2c", h2cClient()}} {
		t.Run(client.name, func(t *testing.T) {
			for _, tc := range tests {
				hdr := map[string]string{}
				for k, v := range map[string]string{"Origin": tc.origin, "Access-Control-Request-Method": tc.reqMethod, "Access-Control-Request-Headers": tc.reqHeaders} {
					if v != "" {
						hdr[k] = v
					}
				}
				res, e := do(t, client.c, tc.method, proxyURL(port, tc.path), "app.example", hdr)
				if res.StatusCode != tc.code || (e.Backend != "") != tc.backend {
					t.Errorf("%s: %s %s: %d from backend %q; want %d, forwarded %v", tc.name, tc.method, tc.path, res.StatusCode, e.Backend, tc.code, tc.backend)
				}
				for k, v := range tc.want {
					got, ok := res.Header[http.CanonicalHeaderKey(k)]
					switch {
					case v == absent && ok:
						t.Errorf("%s: %s: %q; want none", tc.name, k, got)
					case v != absent && strings.Join(got, ",") != v:
						t.Errorf("%s: %s: %q; want %q", tc.name, k, got, v)
					}
				}
			}
		})
	}
}
