package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// refPrefixMatch is the spec's PathPrefix definition, written independently: the prefix's
// path elements (split by "/", trailing slash ignored) are a leading run of the path's.
func refPrefixMatch(prefix, path string) bool {
	pe := strings.Split(strings.Trim(prefix, "/"), "/")
	if strings.Trim(prefix, "/") == "" {
		return strings.HasPrefix(path, "/")
	}
	xe := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(xe) < len(pe) {
		return false
	}
	for i := range pe {
		if pe[i] != xe[i] {
			return false
		}
	}
	return true
}

// FuzzRouteMatch builds a two-route listener from fuzzed match values and checks, for a fuzzed
// request, that matching never panics, that a valid config always compiles, and that the
// chosen rule agrees with an independent reading of the spec for Exact and PathPrefix.
func FuzzRouteMatch(f *testing.F) {
	f.Add("/match/prefix/", "/match/exact", "a.example.com", "/match/prefix/one", "A.Example.com:80", "v", "v")
	f.Add("/", "/", "*.example.com", "/", "x.example.com", "", "x")
	f.Add("/abc/", "/abc", "", "/abcd", "h", "1", "1")
	f.Fuzz(func(t *testing.T, prefixVal, exactVal, routeHost, reqPath, reqHost, hdrMatch, hdrVal string) {
		routes := []ir.HTTPRoute{
			{RouteMeta: ir.RouteMeta{Namespace: "a", Name: "prefix", CreationTimestamp: time.Unix(1, 0)}, Rules: []ir.HTTPRule{{
				Matches: []ir.HTTPMatch{{Path: prefix(prefixVal)}}, Backends: []ir.Backend{backendNamed("prefix")}}}},
			{RouteMeta: ir.RouteMeta{Namespace: "a", Name: "exact", CreationTimestamp: time.Unix(1, 0)}, Rules: []ir.HTTPRule{{
				Matches: []ir.HTTPMatch{{Path: exact(exactVal), Headers: []ir.HeaderMatch{{Name: "x-h", Value: hdrMatch}}}}, Backends: []ir.Backend{backendNamed("exact")}}}},
		}
		if routeHost != "" {
			routes[0].Hostnames = []string{routeHost}
			routes[1].Hostnames = []string{routeHost}
		}
		s := snapshot(1, ir.Listener{Name: "l", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: routes})
		if s.Validate() != nil {
			return
		}
		c, err := compile(s)
		if err != nil {
			t.Fatalf("valid snapshot failed to compile: %v", err)
		}
		u, err := url.Parse(reqPath)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		r := &http.Request{Method: "GET", URL: u, Host: reqHost, Header: http.Header{"X-H": {hdrVal}}}
		host := normalizeHost(reqHost)
		lis, ok := c.ports[80].listeners.first(host)
		if !ok {
			t.Fatalf("listener without hostname must match host %q", host)
		}
		got := ""
		if e := matchHTTP(lis.http, host, r); e != nil {
			got = e.rule.backends.backends[0].name
		}
		hostOK := routeHost == "" || host == routeHost ||
			(strings.HasPrefix(routeHost, "*.") && len(host) > len(routeHost)-1 && strings.HasSuffix(host, routeHost[1:]))
		want := ""
		switch {
		case !hostOK:
		case u.Path == exactVal && hdrVal == hdrMatch:
			want = "exact"
		case refPrefixMatch(prefixVal, u.Path):
			want = "prefix"
		}
		if got != want {
			t.Errorf("path %q host %q (prefix %q, exact %q, route host %q): got %q; want %q", u.Path, host, prefixVal, exactVal, routeHost, got, want)
		}
		// Rewriting never yields a path without a leading slash.
		if want == "prefix" {
			for _, repl := range []string{"/", "/x", "/x/"} {
				if p := modifyPath(u.Path, &ir.PathModifier{Type: ir.ReplacePrefixMatch, ReplacePrefixMatch: repl}, strings.TrimSuffix(prefixVal, "/"), true); !strings.HasPrefix(p, "/") {
					t.Errorf("ReplacePrefixMatch %q on %q: got %q; want a path starting with /", repl, u.Path, p)
				}
			}
		}
	})
}

// FuzzConfigValidate feeds arbitrary JSON to the snapshot decoder, Validate and compile: none
// may panic, and a snapshot that validates must compile unless a certificate fails to parse.
func FuzzConfigValidate(f *testing.F) {
	valid, _ := json.Marshal(snapshot(3, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "a", Name: "r", Hostnames: []string{"*.example.com"}},
		Rules: []ir.HTTPRule{{Matches: []ir.HTTPMatch{{Path: regex("/v[0-9]+"), QueryParams: []ir.HeaderMatch{{Type: ir.MatchRegularExpression, Name: "q", Value: "a+"}}}},
			Filters:  []ir.Filter{mirrorFilter(backendNamed("m"), 50)},
			Backends: []ir.Backend{backendNamed("b")}, Timeouts: &ir.Timeouts{Request: ir.Duration(time.Second)}}}}},
		GRPCRoutes: []ir.GRPCRoute{{RouteMeta: ir.RouteMeta{Namespace: "a", Name: "g"}, Rules: []ir.GRPCRule{{
			Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchRegularExpression, Service: "s.*", Method: "M"}}}}}}}},
		ir.Listener{Name: "tcp", Port: 9000, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "a", Name: "t"}, Backends: []ir.Backend{backendNamed("t")}}}}))
	f.Add(valid)
	f.Add([]byte(`{"version":1,"gateway":{"namespace":"a","name":"b"},"listeners":[{"name":"x","port":443,"protocol":"HTTPS","tls":{"certificates":[{"name":"c","certPEM":"AA==","keyPEM":"AA=="}]}}]}`))
	f.Add([]byte(`{"version":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ir.Snapshot
		if json.Unmarshal(data, &s) != nil {
			return
		}
		if s.Validate() != nil {
			return
		}
		if _, err := compile(&s); err != nil && !strings.Contains(err.Error(), "tls certificate") {
			t.Errorf("valid snapshot failed to compile: %v", err)
		}
	})
}

// FuzzUpdateApply feeds arbitrary JSON to the update decoder and applies it on top of a valid
// configuration as the proxy does (prepare): nothing may panic, and an update that is
// accepted, although only what it changed was validated, must leave a configuration that
// validates as a whole.
func FuzzUpdateApply(f *testing.F) {
	r := func(name, host string) ir.HTTPRoute {
		return ir.HTTPRoute{RouteMeta: ir.RouteMeta{Namespace: "a", Name: name, Hostnames: []string{host}},
			Rules: []ir.HTTPRule{{Matches: []ir.HTTPMatch{{Path: prefix("/")}}, Backends: []ir.Backend{backendNamed("b")}}}}
	}
	base := snapshot(3, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{r("r1", "a.example"), r("r2", "b.example")}},
		ir.Listener{Name: "tcp", Port: 9000, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "a", Name: "t"}, Backends: []ir.Backend{backendNamed("t")}}}})
	cur, _, err := prepare(nil, delta.Full(delta.FromSnapshot(base)))
	if err != nil {
		f.Fatal(err)
	}
	next := snapshot(4, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: "*.example", HTTPRoutes: []ir.HTTPRoute{r("r1", "c.example"), r("r3", "d.example")}})
	for _, u := range []*ir.Update{delta.Diff(cur.table, delta.FromSnapshot(next)), delta.Full(delta.FromSnapshot(next))} {
		b, _ := json.Marshal(u)
		f.Add(b)
	}
	f.Add([]byte(`{"gateway":{"namespace":"test","name":"gw"},"version":4,"baseVersion":3,"upserts":[{"kind":"TCPRoute","namespace":"a","name":"x","attachments":[{"listener":"http","tcp":{"namespace":"a","name":"x"}}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u ir.Update
		if json.Unmarshal(data, &u) != nil {
			return
		}
		st, _, err := prepare(cur, &u)
		if err != nil {
			return
		}
		if err := delta.Snapshot(st.table).Validate(); err != nil {
			t.Errorf("accepted update leaves an invalid configuration: %v", err)
		}
	})
}
