package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/google/go-cmp/cmp"
)

func TestHTTPThroughProxy(t *testing.T) {
	t.Parallel()
	v1, v2 := startBackend(t, "v1"), startBackend(t, "v2")
	port := freePort(t)
	hm := func(h *ir.HeaderModifier) ir.Filter {
		return ir.Filter{Type: ir.FilterRequestHeaderModifier, RequestHeaderModifier: h}
	}
	rules := []ir.HTTPRule{
		{Matches: []ir.HTTPMatch{{Path: prefix("/")}}, Backends: []ir.Backend{v1.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: exact("/v2")}}, Backends: []ir.Backend{v2.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/headers")}}, Filters: []ir.Filter{
			hm(&ir.HeaderModifier{Set: []ir.Header{{Name: "X-Set", Value: "set"}}, Add: []ir.Header{{Name: "X-Add", Value: "added"}}, Remove: []string{"X-Remove"}}),
			{Type: ir.FilterResponseHeaderModifier, ResponseHeaderModifier: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Resp", Value: "r"}}, Remove: []string{"X-Backend"}}},
		}, Backends: []ir.Backend{v1.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/rewrite")}}, Filters: []ir.Filter{{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{
			Hostname: ptr("rewritten.example"), Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, ReplacePrefixMatch: "/new"}}}},
			Backends: []ir.Backend{v2.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/redirect")}}, Filters: []ir.Filter{{Type: ir.FilterRequestRedirect, RequestRedirect: &ir.Redirect{
			Scheme: ptr("https"), Hostname: ptr("example.net"), StatusCode: 301, Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, ReplacePrefixMatch: "/moved"}}}}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/timeout")}}, Timeouts: &ir.Timeouts{Request: ir.Duration(200 * time.Millisecond)}, Backends: []ir.Backend{v1.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/backend-timeout")}}, Timeouts: &ir.Timeouts{Request: ir.Duration(5 * time.Second), BackendRequest: ir.Duration(200 * time.Millisecond)}, Backends: []ir.Backend{v1.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/invalid")}}, Backends: []ir.Backend{{Name: "test/missing", Weight: 1, Invalid: "service not found"}}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/nobackends")}}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/backend-filter")}}, Backends: []ir.Backend{func() ir.Backend {
			b := v2.irBackend(1)
			b.Filters = []ir.Filter{hm(&ir.HeaderModifier{Set: []ir.Header{{Name: "X-Backend-Filter", Value: "v2"}}})}
			return b
		}()}},
	}
	for i := range rules {
		rules[i].Index = i
	}
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r", Hostnames: []string{"app.example"}}, Rules: rules}}}))

	type want struct {
		code            int
		backend, path   string
		host, location  string
		reqHdr, respHdr map[string]string // "" value means absent
	}
	tests := []struct {
		name, path, host string
		hdr              map[string]string
		want             want
	}{
		{"root", "/anything?x=1", "app.example", nil, want{code: 200, backend: "v1", path: "/anything", host: "app.example"}},
		{"exact", "/v2", "app.example", nil, want{code: 200, backend: "v2", path: "/v2"}},
		{"request and response headers", "/headers", "app.example", map[string]string{"X-Remove": "x", "X-Add": "orig", "X-Set": "orig"},
			want{code: 200, backend: "v1", path: "/headers", reqHdr: map[string]string{"X-Set": "set", "X-Add": "orig,added", "X-Remove": ""}, respHdr: map[string]string{"X-Resp": "r", "X-Backend": ""}}},
		{"rewrite host and prefix", "/rewrite/a/b", "app.example", nil, want{code: 200, backend: "v2", path: "/new/a/b", host: "rewritten.example"}},
		{"redirect", "/redirect/x?q=1", "app.example", nil, want{code: 301, location: "https://example.net/moved/x?q=1"}},
		{"request timeout", "/timeout", "app.example", map[string]string{"X-Delay": "2s"}, want{code: 504}},
		{"backend request timeout", "/backend-timeout", "app.example", map[string]string{"X-Delay": "2s"}, want{code: 504}},
		{"within timeout", "/timeout", "app.example", map[string]string{"X-Delay": "1ms"}, want{code: 200, backend: "v1"}},
		{"invalid backend is 500", "/invalid", "app.example", nil, want{code: 500}},
		{"no backends is 500", "/nobackends", "app.example", nil, want{code: 500}},
		{"backend-level filter", "/backend-filter", "app.example", nil, want{code: 200, backend: "v2", reqHdr: map[string]string{"X-Backend-Filter": "v2"}}},
		{"unknown host is 404", "/", "other.example", nil, want{code: 404}},
		{"forwarded headers", "/", "app.example", nil, want{code: 200, backend: "v1", reqHdr: map[string]string{"X-Forwarded-Host": "app.example", "X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1"}}},
	}
	for _, client := range []struct {
		name  string
		c     *http.Client
		proto string
	}{{"http1", h1Client(), "HTTP/1.1"}, {"h2c", h2cClient(), "HTTP/2.0"}} {
		t.Run(client.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					res, e := do(t, client.c, "GET", proxyURL(port, tc.path), tc.host, tc.hdr)
					if res.Proto != client.proto {
						t.Errorf("client protocol: got %s; want %s", res.Proto, client.proto)
					}
					w := tc.want
					if res.StatusCode != w.code {
						t.Fatalf("status: got %d; want %d", res.StatusCode, w.code)
					}
					if e.Backend != w.backend {
						t.Errorf("backend: got %q; want %q", e.Backend, w.backend)
					}
					if w.path != "" && e.Path != w.path {
						t.Errorf("backend saw path %q; want %q", e.Path, w.path)
					}
					if w.host != "" && e.Host != w.host {
						t.Errorf("backend saw host %q; want %q", e.Host, w.host)
					}
					if got := res.Header.Get("Location"); got != w.location {
						t.Errorf("Location: got %q; want %q", got, w.location)
					}
					for k, v := range w.reqHdr {
						if got := strings.Join(e.Headers.Values(k), ","); got != v {
							t.Errorf("backend saw header %s %q; want %q", k, got, v)
						}
					}
					for k, v := range w.respHdr {
						if got := res.Header.Get(k); got != v {
							t.Errorf("response header %s: got %q; want %q", k, got, v)
						}
					}
				})
			}
		})
	}
}

// TestBackendProtocolH2C checks that a backend marked h2c is spoken to over HTTP/2 cleartext
// and a default backend over HTTP/1.1, whatever the client speaks.
func TestBackendProtocolH2C(t *testing.T) {
	t.Parallel()
	b := startBackend(t, "b")
	port := freePort(t)
	h1b, h2b := b.irBackend(1), b.irBackend(1)
	h2b.Protocol = ir.BackendH2C
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{
			{Index: 0, Matches: []ir.HTTPMatch{{Path: prefix("/h1")}}, Backends: []ir.Backend{h1b}},
			{Index: 1, Matches: []ir.HTTPMatch{{Path: prefix("/h2c")}}, Backends: []ir.Backend{h2b}},
		}}}}))
	got := map[string]string{}
	for _, path := range []string{"/h1", "/h2c"} {
		_, e := do(t, h1Client(), "GET", proxyURL(port, path), "x", nil)
		got[path] = e.Proto
	}
	if d := cmp.Diff(map[string]string{"/h1": "HTTP/1.1", "/h2c": "HTTP/2.0"}, got); d != "" {
		t.Errorf("protocol seen by backend (-want +got):\n%s", d)
	}
}
