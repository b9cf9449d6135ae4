package proxy

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

func prefix(v string) *ir.PathMatch { return &ir.PathMatch{Type: ir.MatchPathPrefix, Value: v} }
func exact(v string) *ir.PathMatch  { return &ir.PathMatch{Type: ir.MatchExact, Value: v} }
func regex(v string) *ir.PathMatch  { return &ir.PathMatch{Type: ir.MatchRegularExpression, Value: v} }

// backendNamed is a backend with one (unused in unit tests) endpoint.
func backendNamed(name string) ir.Backend {
	return ir.Backend{Name: name, Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: 1}}}
}

func route(ns, name string, age int, hosts []string, rules ...ir.HTTPRule) ir.HTTPRoute {
	for i := range rules {
		rules[i].Index = i
	}
	return ir.HTTPRoute{RouteMeta: ir.RouteMeta{Namespace: ns, Name: name, Hostnames: hosts,
		CreationTimestamp: time.Unix(1_000_000-int64(age), 0)}, Rules: rules}
}

func rule(backend string, ms ...ir.HTTPMatch) ir.HTTPRule {
	return ir.HTTPRule{Matches: ms, Backends: []ir.Backend{backendNamed(backend)}}
}

func compileOne(t testing.TB, listeners ...ir.Listener) *compiled {
	t.Helper()
	c, err := compile(&ir.Snapshot{Version: 1, Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Listeners: listeners})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// selectHTTP returns the name of the backend of the rule that serves the request, "" if none.
func selectHTTP(c *compiled, port int32, method, target, host string, headers map[string]string) string {
	r := httptest.NewRequest(method, target, nil)
	r.Host = host
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	pc := c.ports[port]
	lis, ok := pc.listeners.first(normalizeHost(host))
	if !ok {
		return ""
	}
	e := matchHTTP(lis.http, normalizeHost(host), r)
	if e == nil {
		return ""
	}
	return e.rule.backends.backends[0].name
}

func TestHTTPMatchPrecedence(t *testing.T) {
	t.Parallel()
	l := ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{
		// The path-match-order conformance case.
		route("a", "order", 0, []string{"order.example"},
			rule("exact-match", ir.HTTPMatch{Path: exact("/match")}),
			rule("exact-match-exact", ir.HTTPMatch{Path: exact("/match/exact")}),
			rule("exact-match-exact-one", ir.HTTPMatch{Path: exact("/match/exact/one")}),
			rule("prefix-match", ir.HTTPMatch{Path: prefix("/match/")}),
			rule("prefix-match-prefix", ir.HTTPMatch{Path: prefix("/match/prefix/")}),
			rule("prefix-match-prefix-one", ir.HTTPMatch{Path: prefix("/match/prefix/one")}),
		),
		// matching-across-routes: part1 and part2 share example.com.
		route("a", "part1", 10, []string{"example.com", "example.net"},
			rule("v1", ir.HTTPMatch{Path: prefix("/")}, ir.HTTPMatch{Headers: []ir.HeaderMatch{{Name: "version", Value: "one"}}})),
		route("a", "part2", 5, []string{"example.com"},
			rule("v2", ir.HTTPMatch{Path: prefix("/v2")}, ir.HTTPMatch{Headers: []ir.HeaderMatch{{Name: "version", Value: "two"}}})),
		// method, header count, query count.
		route("a", "criteria", 0, []string{"crit.example"},
			rule("plain", ir.HTTPMatch{Path: prefix("/c")}),
			rule("method", ir.HTTPMatch{Path: prefix("/c"), Method: "POST"}),
			rule("one-header", ir.HTTPMatch{Path: prefix("/c"), Headers: []ir.HeaderMatch{{Name: "a", Value: "1"}}}),
			rule("two-headers", ir.HTTPMatch{Path: prefix("/c"), Headers: []ir.HeaderMatch{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}}),
			rule("query", ir.HTTPMatch{Path: prefix("/c"), QueryParams: []ir.HeaderMatch{{Name: "q", Value: "x"}}}),
			rule("regex-header", ir.HTTPMatch{Path: prefix("/c"), Headers: []ir.HeaderMatch{{Type: ir.MatchRegularExpression, Name: "r", Value: "^v[0-9]+$"}}}),
			rule("regex-path", ir.HTTPMatch{Path: regex("/c/[0-9]+")}),
		),
		// Ties across routes: oldest first, then namespace/name, then rule order.
		route("z", "old", 100, []string{"tie.example"}, rule("oldest", ir.HTTPMatch{Path: prefix("/")})),
		route("a", "young", 1, []string{"tie.example"}, rule("younger", ir.HTTPMatch{Path: prefix("/")})),
		route("b", "same-age-b", 50, []string{"tie2.example"}, rule("b", ir.HTTPMatch{Path: prefix("/")})),
		route("a", "same-age-a", 50, []string{"tie2.example"}, rule("a-first", ir.HTTPMatch{Path: prefix("/")}), rule("a-second", ir.HTTPMatch{Path: prefix("/")})),
		// Hostnames: exact beats the longest wildcard beats the shorter one; fall through.
		route("a", "wild-short", 0, []string{"*.example.org"}, rule("wild-short", ir.HTTPMatch{Path: prefix("/")})),
		route("a", "wild-long", 0, []string{"*.foo.example.org"}, rule("wild-long", ir.HTTPMatch{Path: prefix("/only")})),
		route("a", "exact-host", 0, []string{"bar.foo.example.org"}, rule("exact-host", ir.HTTPMatch{Path: exact("/exact")})),
	}}
	c := compileOne(t, l)
	tests := []struct {
		name, method, target, host string
		headers                    map[string]string
		want                       string
	}{
		{"exact one", "GET", "/match/exact/one", "order.example", nil, "exact-match-exact-one"},
		{"exact", "GET", "/match/exact", "order.example", nil, "exact-match-exact"},
		{"exact short", "GET", "/match", "order.example", nil, "exact-match"},
		{"longest prefix", "GET", "/match/prefix/one/any", "order.example", nil, "prefix-match-prefix-one"},
		{"shorter prefix", "GET", "/match/prefix/any", "order.example", nil, "prefix-match-prefix"},
		{"shortest prefix", "GET", "/match/any", "order.example", nil, "prefix-match"},
		{"prefix is element-wise", "GET", "/matchany", "order.example", nil, ""},
		{"trailing slash ignored", "GET", "/match/prefix", "order.example", nil, "prefix-match-prefix"},
		{"across routes root", "GET", "/", "example.com", nil, "v1"},
		{"across routes other path", "GET", "/example", "example.com", nil, "v1"},
		{"across routes other host", "GET", "/example", "example.net", nil, "v1"},
		{"header one", "GET", "/example", "example.com", map[string]string{"Version": "one"}, "v1"},
		{"v2 prefix", "GET", "/v2", "example.com", nil, "v2"},
		{"v2 on other host", "GET", "/v2", "example.net", nil, "v1"},
		{"v2 deeper", "GET", "/v2/example", "example.com", nil, "v2"},
		{"header two beats root prefix", "GET", "/", "example.com", map[string]string{"version": "two"}, "v2"},
		{"host with port and case", "GET", "/v2", "Example.COM:8080", nil, "v2"},
		{"plain", "GET", "/c", "crit.example", nil, "plain"},
		{"method beats headers", "POST", "/c", "crit.example", map[string]string{"a": "1", "b": "2"}, "method"},
		{"two headers beat one", "GET", "/c", "crit.example", map[string]string{"a": "1", "b": "2"}, "two-headers"},
		{"one header", "GET", "/c", "crit.example", map[string]string{"a": "1"}, "one-header"},
		{"header beats query", "GET", "/c?q=x", "crit.example", map[string]string{"a": "1"}, "one-header"},
		{"query", "GET", "/c?q=x", "crit.example", nil, "query"},
		{"query first value counts", "GET", "/c?q=y&q=x", "crit.example", nil, "plain"},
		{"regex header", "GET", "/c", "crit.example", map[string]string{"r": "v12"}, "regex-header"},
		{"regex header no match", "GET", "/c", "crit.example", map[string]string{"r": "v12x"}, "plain"},
		{"regex path beats prefix", "GET", "/c/42", "crit.example", nil, "regex-path"},
		{"regex path is anchored", "GET", "/c/42/x", "crit.example", nil, "plain"},
		{"oldest route wins", "GET", "/", "tie.example", nil, "oldest"},
		{"namespace/name then rule order", "GET", "/", "tie2.example", nil, "a-first"},
		{"exact hostname", "GET", "/exact", "bar.foo.example.org", nil, "exact-host"},
		{"falls through to longer wildcard", "GET", "/only", "bar.foo.example.org", nil, "wild-long"},
		{"falls through to shorter wildcard", "GET", "/other", "bar.foo.example.org", nil, "wild-short"},
		{"wildcard matches several labels", "GET", "/x", "a.b.c.example.org", nil, "wild-short"},
		{"wildcard does not match the apex", "GET", "/x", "example.org", nil, ""},
		{"unknown host", "GET", "/", "nothing.test", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := selectHTTP(c, 80, tc.method, tc.target, tc.host, tc.headers); got != tc.want {
				t.Errorf("%s %s (host %s): got backend %q; want %q", tc.method, tc.target, tc.host, got, tc.want)
			}
		})
	}
}

func TestListenerSelectionAndIntersection(t *testing.T) {
	t.Parallel()
	c := compileOne(t,
		ir.Listener{Name: "any", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{
			route("a", "catch-all", 0, nil, rule("any-listener", ir.HTTPMatch{}))}},
		ir.Listener{Name: "wild", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: "*.wildcard.org", HTTPRoutes: []ir.HTTPRoute{
			// No route hostnames: the listener's hostname applies.
			route("a", "wild", 0, nil, rule("wild-listener", ir.HTTPMatch{}))}},
		ir.Listener{Name: "specific", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: "four.wildcard.org", HTTPRoutes: []ir.HTTPRoute{
			route("a", "specific", 0, nil, rule("specific-listener", ir.HTTPMatch{Path: prefix("/only")}))}},
	)
	tests := []struct{ name, host, path, want string }{
		{"catch-all listener", "example.org", "/", "any-listener"},
		{"wildcard listener", "three.wildcard.org", "/", "wild-listener"},
		{"specific listener", "four.wildcard.org", "/only", "specific-listener"},
		// Listener isolation: a request for the specific listener never falls back to the
		// wildcard listener's routes.
		{"listener isolation", "four.wildcard.org", "/other", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := selectHTTP(c, 80, "GET", tc.path, tc.host, nil); got != tc.want {
				t.Errorf("host %s path %s: got %q; want %q", tc.host, tc.path, got, tc.want)
			}
		})
	}
}

func TestGRPCMatch(t *testing.T) {
	t.Parallel()
	g := func(name string, age int, hosts []string, rules ...ir.GRPCRule) ir.GRPCRoute {
		for i := range rules {
			rules[i].Index = i
		}
		return ir.GRPCRoute{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: name, Hostnames: hosts, CreationTimestamp: time.Unix(1_000_000-int64(age), 0)}, Rules: rules}
	}
	gr := func(backend string, ms ...ir.GRPCMatch) ir.GRPCRule {
		return ir.GRPCRule{Matches: ms, Backends: []ir.Backend{backendNamed(backend)}}
	}
	mm := func(typ ir.MatchType, svc, method string, hs ...ir.HeaderMatch) ir.GRPCMatch {
		return ir.GRPCMatch{Method: &ir.GRPCMethodMatch{Type: typ, Service: svc, Method: method}, Headers: hs}
	}
	c := compileOne(t, ir.Listener{Name: "grpc", Port: 80, Protocol: ir.ProtocolHTTP, GRPCRoutes: []ir.GRPCRoute{
		g("exact", 0, nil,
			gr("echo", mm(ir.MatchExact, "pkg.Echo", "Echo")),
			gr("echo-two-service", mm(ir.MatchExact, "pkg.Echo", "")),
			gr("hdr", mm(ir.MatchExact, "pkg.Hdr", "Call", ir.HeaderMatch{Name: "version", Value: "two"})),
			gr("hdr-regex", mm(ir.MatchExact, "pkg.Hdr", "Call", ir.HeaderMatch{Type: ir.MatchRegularExpression, Name: "version", Value: "^t"}, ir.HeaderMatch{Name: "x", Value: "y"})),
			gr("re", mm(ir.MatchRegularExpression, `re\..*`, "Get.*")),
			gr("method-only", mm(ir.MatchExact, "", "Solo")),
		),
		g("host", 0, []string{"grpc.example"}, gr("host-any")),
	}})
	tests := []struct {
		name, host, path string
		headers          map[string]string
		want             string
	}{
		{"exact service and method", "x", "/pkg.Echo/Echo", nil, "echo"},
		{"service only", "x", "/pkg.Echo/EchoTwo", nil, "echo-two-service"},
		{"header match", "x", "/pkg.Hdr/Call", map[string]string{"version": "two"}, "hdr"},
		{"more headers win", "x", "/pkg.Hdr/Call", map[string]string{"version": "two", "x": "y"}, "hdr-regex"},
		{"header mismatch", "x", "/pkg.Hdr/Call", map[string]string{"version": "one"}, ""},
		{"regex", "x", "/re.Svc/GetThing", nil, "re"},
		{"regex anchored", "x", "/xre.Svc/GetThing", nil, ""},
		{"method only", "x", "/any.Svc/Solo", nil, "method-only"},
		{"unknown", "x", "/pkg.Other/Echo", nil, ""},
		{"malformed path", "x", "/noslash", nil, ""},
		{"host route", "grpc.example", "/pkg.Other/Echo", nil, "host-any"},
		{"exact host beats any-host route", "grpc.example", "/pkg.Echo/Echo", nil, "host-any"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", tc.path, nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			lis, _ := c.ports[80].listeners.first(tc.host)
			got := ""
			if e := matchGRPC(lis.grpc, tc.host, r); e != nil {
				got = e.rule.backends.backends[0].name
			}
			if got != tc.want {
				t.Errorf("%s host %s: got %q; want %q", tc.path, tc.host, got, tc.want)
			}
		})
	}
}
