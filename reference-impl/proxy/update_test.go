package proxy

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/delta/routemap"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// The package's tests use routemap's trees from 5 keys on (the proxy's maps hold more than 256
// keys only in the benchmarks), so that the differential tests below go through tree edits.
func init() { routemap.FlatMax = 4 }

// dumpTables renders c's lookup tables (what requests are matched against, in order) so the
// tables of an update can be compared with a compile of the full snapshot from scratch.
func dumpTables(c *compiled) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d gateway %s\n", c.version, c.gateway)
	ports := make([]int, 0, len(c.ports))
	for p := range c.ports {
		ports = append(ports, int(p))
	}
	sort.Ints(ports)
	for _, p := range ports {
		pc := c.ports[int32(p)]
		fmt.Fprintf(&b, "port %d %s first %s\n", p, pc.protocol, pc.first.name)
		dumpHosts(&b, "  ", pc.listeners, func(b *strings.Builder, ind string, lc *listenerConfig) {
			fmt.Fprintf(b, "%slistener %s host %q grpc %v certs %d\n", ind, lc.name, lc.hostname, lc.hasGRPC, len(lc.certs))
			dumpHosts(b, ind+"  ", lc.http, func(b *strings.Builder, ind string, e *httpEntry) {
				fmt.Fprintf(b, "%s%s match %d kind %d path %q plen %d re %v method %q header %s query %s timeout %v filters %s backends %s\n",
					ind, e.rule.label, e.matchIdx, e.kind, e.path, e.plen, e.re, e.method, dumpValues(e.header), dumpValues(e.query),
					e.rule.timeout, dumpFilters(e.rule.filters), dumpBackends(e.rule.backends.backends))
			})
			dumpHosts(b, ind+"  ", lc.grpc, func(b *strings.Builder, ind string, e *grpcEntry) {
				fmt.Fprintf(b, "%s%s match %d %q/%q %v/%v header %s filters %s backends %s\n", ind, e.rule.label, e.matchIdx,
					e.service, e.method, e.serviceRe, e.methodRe, dumpValues(e.header), dumpFilters(e.rule.filters), dumpBackends(e.rule.backends.backends))
			})
		})
		if pc.tcp != nil {
			fmt.Fprintf(&b, "  tcp %s backends %s\n", pc.tcp.label, dumpBackends(pc.tcp.backends.backends))
		}
	}
	return b.String()
}

func dumpHosts[E any](b *strings.Builder, ind string, t *hostTable[E], entry func(*strings.Builder, string, E)) {
	hosts := make([]string, 0, t.exact.Len())
	for h := range t.exact.All() {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	group := func(name string, es []E) {
		fmt.Fprintf(b, "%s%s:\n", ind, name)
		for _, e := range es {
			entry(b, ind+"  ", e)
		}
	}
	for _, h := range hosts {
		es, _ := t.exact.Get(h)
		group(h, es)
	}
	for _, w := range t.wild {
		group("*"+w.suffix, w.entries)
	}
	group("(any)", t.any)
}

func dumpValues(vs []valueMatch) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s=%q/%v", v.name, v.value, v.re))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func dumpFilters(fs []filter) string {
	var parts []string
	for _, f := range fs {
		s := string(f.Type)
		if f.mirror != nil {
			s += "->" + dumpBackends([]*backend{f.mirror})
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func dumpBackends(bs []*backend) string {
	var parts []string
	for _, be := range bs {
		parts = append(parts, fmt.Sprintf("%s w%d h2c %v %v %s", be.name, be.weight, be.h2c, be.endpoints, dumpFilters(be.filters)))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// randomRoute is an HTTPRoute drawn from a small space, so that successive snapshots share,
// drop, add and change routes, hostnames, matches, filters and endpoints.
func randomRoute(rnd *rand.Rand, name string) ir.HTTPRoute {
	hosts := [][]string{nil, {"a.example.com"}, {"b.example.com", "*.example.com"}, {"*.example.com"}, {name + ".example.com"}}
	var rules []ir.HTTPRule
	for i := range 1 + rnd.IntN(2) {
		r := rule("svc-"+fmt.Sprint(rnd.IntN(3)), ir.HTTPMatch{Path: prefix(fmt.Sprintf("/p%d", rnd.IntN(3)))})
		r.Index = i
		if rnd.IntN(3) == 0 {
			r.Matches = append(r.Matches, ir.HTTPMatch{Path: regex("/re/[0-9]+"), Method: "GET",
				Headers: []ir.HeaderMatch{{Type: ir.MatchExact, Name: "x-v", Value: fmt.Sprint(rnd.IntN(2))}}})
		}
		if rnd.IntN(3) == 0 {
			r.Filters = []ir.Filter{{Type: ir.FilterRequestMirror, RequestMirror: &ir.Mirror{Percent: 50, Backend: backendNamed("mirror")}}}
		}
		r.Backends[0].Endpoints[0].Port = int32(1 + rnd.IntN(2))
		rules = append(rules, r)
	}
	return route("ns", name, rnd.IntN(3), hosts[rnd.IntN(len(hosts))], rules...)
}

// TestDeltasMatchFullSnapshot is the delta protocol's differential test: a random walk of
// snapshots (routes added, removed and redrawn one to three at a time; now and then the head
// changes: a listener's hostname, a second listener added or dropped; a gRPC route's backend;
// routes in another order; a route twice) goes through what the controller does (diff the
// snapshot's table against the previous one, encode the update) and what the proxy does
// (decode it, apply it to its table, compile what changed). After every step the proxy's
// table must equal the full snapshot's and its lookup tables must equal those compiled from
// the full snapshot from scratch.
func TestDeltasMatchFullSnapshot(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			checkDeltaWalk(t, rand.New(rand.NewPCG(seed, 2)))
		})
	}
}

// wire encodes and decodes u as the stream carries it.
func wire(t *testing.T, u *ir.Update) *ir.Update {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var out ir.Update
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// tableJSON renders a table as the snapshot it assembles to, for comparison.
func tableJSON(t *testing.T, tb *delta.Table) string {
	t.Helper()
	b, err := json.MarshalIndent(delta.Snapshot(tb), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkDeltaWalk(t *testing.T, rnd *rand.Rand) {
	var (
		state  *routes      // the proxy's
		sent   *delta.Table // the controller's last published
		deltas int
	)
	routesByName := map[string]ir.HTTPRoute{}
	grpcRoute := ir.GRPCRoute{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "g"},
		Rules: []ir.GRPCRule{{Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchExact, Service: "s"}}}, Backends: []ir.Backend{backendNamed("g")}}}}
	for v := int64(1); v <= 300; v++ {
		// Change one to three routes: add, remove, or redraw.
		for range 1 + rnd.IntN(3) {
			name := fmt.Sprintf("r%02d", rnd.IntN(30))
			if _, ok := routesByName[name]; ok && rnd.IntN(3) == 0 {
				delete(routesByName, name)
			} else {
				routesByName[name] = randomRoute(rnd, name)
			}
		}
		names := make([]string, 0, len(routesByName))
		for n := range routesByName {
			names = append(names, n)
		}
		sort.Strings(names)
		var rs []ir.HTTPRoute
		for _, n := range names {
			rs = append(rs, routesByName[n])
		}
		if v%11 == 0 {
			rnd.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		}
		if v%17 == 0 && len(rs) > 1 {
			rs = append(rs, rs[0]) // the same route twice
		}
		lh := "*.example.com"
		if v%13 == 0 {
			lh = "a.example.com" // a head change: routes without hostnames move
		}
		ls := []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: lh, HTTPRoutes: rs}}
		if v%5 != 0 {
			// A second listener sharing the port and carrying some of the same routes: a
			// route without hostnames gets this listener's.
			ls = append(ls, ir.Listener{Name: "other", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: "other.test",
				HTTPRoutes: rs[:len(rs)/2], GRPCRoutes: []ir.GRPCRoute{grpcRoute}})
		}
		if v%7 == 0 {
			grpcRoute = ir.GRPCRoute{RouteMeta: grpcRoute.RouteMeta, Rules: []ir.GRPCRule{{Matches: grpcRoute.Rules[0].Matches,
				Backends: []ir.Backend{backendNamed(fmt.Sprint("g", v))}}}}
		}
		s := snapshot(v, ls...)
		// The controller: the full state first, then deltas.
		table := delta.FromSnapshot(s)
		u := delta.Full(table)
		if sent != nil {
			if u = delta.Diff(sent, table); u == nil {
				continue // nothing changed: no version
			}
			deltas++
		}
		sent = table
		// The proxy.
		next, got, err := prepare(state, wire(t, u))
		if err != nil {
			t.Fatalf("version %d: apply update: %v", v, err)
		}
		state = next
		if d := cmp.Diff(tableJSON(t, delta.FromSnapshot(s)), tableJSON(t, state.table)); d != "" {
			t.Fatalf("version %d: the proxy's table after the update differs from the full snapshot's (-want +got):\n%s", v, d)
		}
		want, err := compile(s)
		if err != nil {
			t.Fatalf("version %d: compile: %v", v, err)
		}
		if d := cmp.Diff(dumpTables(want), dumpTables(got)); d != "" {
			t.Fatalf("version %d: the tables after the update differ from a full compile (-want +got):\n%s", v, d)
		}
	}
	if deltas < 250 {
		t.Fatalf("only %d of 300 steps were deltas; the walk is broken", deltas)
	}
}

// TestDeltaOnWrongBaseIsRefused: a delta whose base is not the version in force is refused
// with delta.ErrWrongBase and changes nothing; the full state is always accepted.
func TestDeltaOnWrongBaseIsRefused(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	be := startBackend(t, "b")
	snap := func(v int64, n int) *ir.Snapshot {
		rs := benchRoutes(0, n)
		for i := range rs {
			rs[i].Rules[0].Backends = []ir.Backend{be.irBackend(1)}
		}
		return snapshot(v, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs})
	}
	p := startProxy(t, Options{}, snap(1, 2))
	good := delta.Diff(delta.FromSnapshot(snap(1, 2)), delta.FromSnapshot(snap(2, 3)))
	for _, base := range []int64{2, 7} {
		u := *good
		u.BaseVersion = base
		if err := p.ApplyUpdate(&u); !errors.Is(err, delta.ErrWrongBase) {
			t.Errorf("delta on base %d with version 1 in force: got %v; want delta.ErrWrongBase", base, err)
		}
	}
	stale := *good
	stale.Version = 1 // not newer than its base
	if err := p.ApplyUpdate(&stale); err == nil || errors.Is(err, delta.ErrWrongBase) {
		t.Errorf("delta of version 1 on base 1: got %v; want a refusal other than the wrong base", err)
	}
	if got := p.Version(); got != 1 {
		t.Fatalf("after refused deltas: version %d; want 1", got)
	}
	if code := getStatus(t, port, "r-00002.bench.example"); code != http.StatusNotFound {
		t.Errorf("route of the refused deltas: got %d; want 404", code)
	}
	// The right base applies, and then the route is served.
	if err := p.ApplyUpdate(good); err != nil {
		t.Fatalf("delta on the right base: %v", err)
	}
	if got := p.Version(); got != 2 {
		t.Errorf("after the delta: version %d; want 2", got)
	}
	if code := getStatus(t, port, "r-00002.bench.example"); code != http.StatusOK {
		t.Errorf("route of the applied delta: got %d; want 200", code)
	}
	// Before anything was applied, a delta is on the wrong base too.
	if err := New(Options{}).ApplyUpdate(good); !errors.Is(err, delta.ErrWrongBase) {
		t.Errorf("delta before any full state: got %v; want delta.ErrWrongBase", err)
	}
	// The full state replaces whatever is in force, whatever its version.
	if err := p.ApplyUpdate(delta.Full(delta.FromSnapshot(snap(1, 1)))); err != nil || p.Version() != 1 {
		t.Errorf("full state of version 1 over version 2: got %v, version %d; want it applied", err, p.Version())
	}
	if code := getStatus(t, port, "r-00001.bench.example"); code != http.StatusNotFound {
		t.Errorf("route absent from the full state: got %d; want 404", code)
	}
}

// getStatus is the status of a GET / for host through the proxy's port.
func getStatus(t *testing.T, port int32, host string) int {
	t.Helper()
	resp, _ := do(t, h1Client(), "GET", proxyURL(port, "/"), host, nil)
	return resp.StatusCode
}

// TestUpdateReusesUnchangedRoutes checks the point of deltas on the proxy: a route the update
// does not upsert keeps its compiled entries (with their backends), an upserted one gets new
// ones, deleted routes leave the state, and an HTTP listener no route of the update touches
// keeps its tables.
func TestUpdateReusesUnchangedRoutes(t *testing.T) {
	t.Parallel()
	s1 := routesSnapshot(3)
	s1.Listeners = append(s1.Listeners, ir.Listener{Name: "other", Port: 81, Protocol: ir.ProtocolHTTP, HTTPRoutes: benchRoutes(20, 1)})
	st1, c1, err := prepare(nil, delta.Full(delta.FromSnapshot(s1)))
	if err != nil {
		t.Fatal(err)
	}
	rs := slices.Clone(s1.Listeners[0].HTTPRoutes)
	// A new route, and route 1 with one endpoint changed.
	rs = append(rs, benchRoutes(10, 1)...)
	rs[1] = benchRoutes(1, 1)[0]
	rs[1].Rules[0].Backends[0].Endpoints[2].Port = 3001
	s2 := snapshot(2, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs}, s1.Listeners[1])
	u := delta.Diff(st1.table, delta.FromSnapshot(s2))
	if len(u.Upserts) != 2 || u.Head != nil || len(u.Deletes) != 0 {
		t.Fatalf("delta: %d upserts, head %v, %d deletes; want 2 upserts only", len(u.Upserts), u.Head != nil, len(u.Deletes))
	}
	st2, c2, err := prepare(st1, u)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(c *compiled, host string) *httpEntry {
		es, _ := c.ports[80].listeners.any[0].http.exact.Get(host)
		if len(es) == 0 {
			t.Fatalf("version %d: no entries for host %s", c.version, host)
		}
		return es[0]
	}
	if entry(c1, "r-00000.bench.example") != entry(c2, "r-00000.bench.example") {
		t.Errorf("unchanged route r-00000: got new compiled entries; want the previous ones")
	}
	old, cur := entry(c1, "r-00001.bench.example"), entry(c2, "r-00001.bench.example")
	if old == cur || old.rule.backends.backends[0] == cur.rule.backends.backends[0] {
		t.Errorf("route r-00001 with a changed endpoint: got the previous compiled entry or backend; want new ones")
	}
	if got, want := cur.rule.backends.backends[0].endpoints[2], "10.1.0.3:3001"; got != want {
		t.Errorf("route r-00001 endpoint 2: got %s; want %s", got, want)
	}
	if c1.ports[81].first != c2.ports[81].first {
		t.Errorf("listener other, untouched by the update: got new tables; want the previous ones")
	}
	// Delete all but one route of listener http.
	s3 := snapshot(3, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs[:1]}, s1.Listeners[1])
	st3, _, err := prepare(st2, delta.Diff(st2.table, delta.FromSnapshot(s3)))
	if err != nil {
		t.Fatal(err)
	}
	if st3.compiled.Len() != 2 || st3.table.Routes.Len() != 2 {
		t.Errorf("after deleting 3 of 5 routes: %d compiled, %d in the table; want 2 and 2", st3.compiled.Len(), st3.table.Routes.Len())
	}
}

// TestUpdateStillValidates checks that an update is refused when what it changes is invalid,
// naming the field, and that the refusal leaves the state as it was.
func TestUpdateStillValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(s *ir.Snapshot)
		want   string
	}{
		{"changed route invalid", func(s *ir.Snapshot) {
			rs := slices.Clone(s.Listeners[0].HTTPRoutes)
			rs[1] = benchRoutes(1, 1)[0]
			rs[1].Hostnames = []string{"Not A Hostname"}
			s.Listeners[0].HTTPRoutes = rs
		}, `bench/r-00001.hostnames[0]`},
		{"added route invalid", func(s *ir.Snapshot) {
			r := benchRoutes(7, 1)[0]
			r.Rules[0].Matches[0].Path = regex("(")
			s.Listeners[0].HTTPRoutes = append(slices.Clone(s.Listeners[0].HTTPRoutes), r)
		}, `bench/r-00007.rules[0].matches[0].path.value: invalid regular expression`},
		{"listener becomes TCP", func(s *ir.Snapshot) {
			s.Listeners[0].Protocol = ir.ProtocolTCP
		}, `TCP listener cannot carry HTTP or gRPC routes`},
		{"listener becomes HTTPS without certificates", func(s *ir.Snapshot) {
			s.Listeners[0].Protocol = ir.ProtocolHTTPS
		}, `HTTPS listener needs at least one certificate`},
		{"second listener with the same name", func(s *ir.Snapshot) {
			l := s.Listeners[0]
			l.Port, l.HTTPRoutes = 81, nil
			s.Listeners = append(s.Listeners, l)
		}, `duplicate listener name`},
		{"listener hostname", func(s *ir.Snapshot) {
			s.Listeners[0].Hostname = "Bad_Host"
		}, `listeners[0] "http".hostname`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := routesSnapshot(3)
			st, _, err := prepare(nil, delta.Full(delta.FromSnapshot(s)))
			if err != nil {
				t.Fatal(err)
			}
			bad := routesSnapshot(3)
			bad.Version = 2
			tc.mutate(bad)
			u := delta.Diff(st.table, delta.FromSnapshot(bad))
			if u == nil {
				t.Fatal("no delta")
			}
			if _, _, err := prepare(st, wire(t, u)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("delta: got %v; want an error containing %q", err, tc.want)
			}
			if _, _, err := prepare(st, delta.Full(delta.FromSnapshot(bad))); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("full state: got %v; want an error containing %q", err, tc.want)
			}
			if _, err := compile(bad); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("compile of the snapshot: got %v; want an error containing %q", err, tc.want)
			}
			// The refused update left st as it was: a valid delta on it applies.
			ok := routesSnapshot(4)
			ok.Version = 3
			if _, _, err := prepare(st, delta.Diff(st.table, delta.FromSnapshot(ok))); err != nil {
				t.Fatalf("valid delta after a refused one: %v", err)
			}
		})
	}
}

// TestUpdateCertificates checks an HTTPS listener's certificates are parsed again only when
// the head changes.
func TestUpdateCertificates(t *testing.T) {
	t.Parallel()
	c1, k1, _ := selfSigned(t, "a.example.com")
	c2, k2, _ := selfSigned(t, "b.example.com")
	snap := func(v int64, cert, key []byte, routes int) *ir.Snapshot {
		return snapshot(v, ir.Listener{Name: "https", Port: 443, Protocol: ir.ProtocolHTTPS,
			TLS: &ir.TLS{Certificates: []ir.Certificate{{Name: "ns/cert", CertPEM: cert, KeyPEM: key}}}, HTTPRoutes: benchRoutes(0, routes)})
	}
	var st *routes
	leaf := func(s *ir.Snapshot) *x509.Certificate {
		t.Helper()
		u := delta.Full(delta.FromSnapshot(s))
		if st != nil {
			u = delta.Diff(st.table, delta.FromSnapshot(s))
		}
		next, c, err := prepare(st, u)
		if err != nil {
			t.Fatal(err)
		}
		st = next
		return c.ports[443].first.certs[0].Leaf
	}
	first := leaf(snap(1, c1, k1, 2))
	if again := leaf(snap(2, c1, k1, 3)); again != first {
		t.Errorf("a route added, the same certificate: got it parsed anew; want the parsed one reused")
	}
	if other := leaf(snap(3, c2, k2, 3)); other == first || other.Subject.CommonName != "b.example.com" {
		t.Errorf("changed certificate: got %v; want b.example.com parsed anew", other.Subject.CommonName)
	}
	if _, _, err := prepare(st, delta.Diff(st.table, delta.FromSnapshot(snap(4, c1, k2, 3)))); err == nil || !strings.Contains(err.Error(), `tls certificate "ns/cert"`) {
		t.Errorf("mismatched key: got %v; want a tls certificate error", err)
	}
}

// TestApplyAfterRefusals checks that Apply goes on working after refusals at every step.
func TestApplyAfterRefusals(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	snap := func(v int64) *ir.Snapshot {
		return snapshot(v, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: benchRoutes(0, int(v))})
	}
	p := startProxy(t, Options{}, snap(1))
	other := snap(2)
	other.Gateway.Name = "other"
	done := make(chan error, 1)
	go func() {
		if err := p.Apply(other); err == nil {
			done <- fmt.Errorf("snapshot of another gateway: got no error; want one")
			return
		}
		if err := p.Apply(snapshot(3, ir.Listener{Name: "http", Port: port, Protocol: "SCTP"})); err == nil {
			done <- fmt.Errorf("invalid snapshot: got no error; want one")
			return
		}
		done <- p.Apply(snap(4))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply after refused snapshots: still waiting after 10s; want it done")
	}
	if got := p.Version(); got != 4 {
		t.Fatalf("version: got %d; want 4", got)
	}
}
