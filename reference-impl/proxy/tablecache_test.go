package proxy

import (
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// dumpTables renders c's lookup tables (what requests are matched against, in order) so a
// cached compile can be compared with a compile from scratch.
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
	hosts := make([]string, 0, len(t.exact))
	for h := range t.exact {
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
		group(h, t.exact[h])
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

// TestTableCacheMatchesFullCompile applies a random walk of snapshots through one tableCache
// and checks every result has exactly the tables of compiling that snapshot from scratch.
func TestTableCacheMatchesFullCompile(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			checkCacheWalk(t, rand.New(rand.NewPCG(seed, 2)))
		})
	}
}

func checkCacheWalk(t *testing.T, rnd *rand.Rand) {
	var tc tableCache
	routes := map[string]ir.HTTPRoute{}
	grpcRoute := ir.GRPCRoute{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "g"},
		Rules: []ir.GRPCRule{{Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchExact, Service: "s"}}}, Backends: []ir.Backend{backendNamed("g")}}}}
	for v := range int64(300) {
		// Change one to three routes: add, remove, or redraw.
		for range 1 + rnd.IntN(3) {
			name := fmt.Sprintf("r%02d", rnd.IntN(30))
			if _, ok := routes[name]; ok && rnd.IntN(3) == 0 {
				delete(routes, name)
			} else {
				routes[name] = randomRoute(rnd, name)
			}
		}
		names := make([]string, 0, len(routes))
		for n := range routes {
			names = append(names, n)
		}
		sort.Strings(names)
		var rs []ir.HTTPRoute
		for _, n := range names {
			rs = append(rs, routes[n])
		}
		if v%11 == 0 {
			// Routes in another order: ties between equal entries keep snapshot order.
			rnd.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		}
		if v%17 == 0 && len(rs) > 1 {
			rs = append(rs, rs[0]) // the same route twice
		}
		lh := "*.example.com"
		if v%13 == 0 {
			lh = "a.example.com" // routes without hostnames move
		}
		ls := []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: lh, HTTPRoutes: rs}}
		if v%5 != 0 {
			// A second listener sharing the port and carrying the same routes: its cache
			// entries are separate, and a route without hostnames gets this listener's.
			ls = append(ls, ir.Listener{Name: "other", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: "other.test",
				HTTPRoutes: rs[:len(rs)/2], GRPCRoutes: []ir.GRPCRoute{grpcRoute}})
		}
		if v%7 == 0 {
			grpcRoute.Rules[0].Backends = []ir.Backend{backendNamed(fmt.Sprint("g", v))}
		}
		s := snapshot(v, ls...)
		want, err := compile(s)
		if err != nil {
			t.Fatalf("version %d: compile: %v", v, err)
		}
		got, err := tc.compile(s)
		if err != nil {
			t.Fatalf("version %d: cached compile: %v", v, err)
		}
		if d := cmp.Diff(dumpTables(want), dumpTables(got)); d != "" {
			t.Fatalf("version %d: cached tables differ from a full compile (-want +got):\n%s", v, d)
		}
	}
	if len(tc.http) == 0 || len(tc.grpc) == 0 {
		t.Fatalf("cache holds %d HTTP and %d gRPC routes; want some of each", len(tc.http), len(tc.grpc))
	}
}

// TestTableCacheReusesUnchangedRoutes checks the point of the cache: an unchanged route's
// compiled entries (with their backends) are shared by the next tables, a changed route's
// are not, and routes gone from a snapshot leave the cache.
func TestTableCacheReusesUnchangedRoutes(t *testing.T) {
	t.Parallel()
	var tc tableCache
	s1 := routesSnapshot(3)
	c1, err := tc.compile(s1)
	if err != nil {
		t.Fatal(err)
	}
	rs := slices.Clone(s1.Listeners[0].HTTPRoutes)
	// A new route, and route 1 with one endpoint changed (a fresh value, as a decoder gives).
	rs = append(rs, benchRoutes(10, 1)...)
	rs[1] = benchRoutes(1, 1)[0]
	rs[1].Rules[0].Backends[0].Endpoints[2].Port = 3001
	s2 := snapshot(2, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs})
	c2, err := tc.compile(s2)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(c *compiled, host string) *httpEntry {
		es := c.ports[80].listeners.any[0].http.exact[host]
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
	if _, err := tc.compile(routesSnapshot(1)); err != nil {
		t.Fatal(err)
	}
	if len(tc.http) != 1 {
		t.Errorf("after a 1-route snapshot the cache holds %d routes; want 1", len(tc.http))
	}
}

// TestTableCacheStillValidates checks that what the cache skips never lets an invalid
// snapshot through, and that rejections read exactly as a full compile's.
func TestTableCacheStillValidates(t *testing.T) {
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
		}, `httpRoutes[1] bench/r-00001.hostnames[0]`},
		{"added route invalid", func(s *ir.Snapshot) {
			r := benchRoutes(7, 1)[0]
			r.Rules[0].Matches[0].Path = regex("(")
			s.Listeners[0].HTTPRoutes = append(slices.Clone(s.Listeners[0].HTTPRoutes), r)
		}, `httpRoutes[3] bench/r-00007.rules[0].matches[0].path.value: invalid regular expression`},
		{"route modified in place", func(s *ir.Snapshot) {
			s.Listeners[0].HTTPRoutes[2].Rules[0].Backends[0].Endpoints[0].Address = "not-an-ip"
		}, `endpoints[0].address: "not-an-ip" is not an IP address`},
		{"listener becomes TCP", func(s *ir.Snapshot) {
			s.Listeners[0].Protocol = ir.ProtocolTCP
		}, `TCP listener cannot carry HTTP or gRPC routes`},
		{"listener becomes HTTPS without certificates", func(s *ir.Snapshot) {
			s.Listeners[0].Protocol = ir.ProtocolHTTPS
		}, `HTTPS listener needs at least one certificate`},
		{"second listener with the same name", func(s *ir.Snapshot) {
			s.Listeners = append(s.Listeners, s.Listeners[0])
			s.Listeners[1].Port = 81
		}, `duplicate listener name`},
		{"listener hostname", func(s *ir.Snapshot) {
			s.Listeners[0].Hostname = "Bad_Host"
		}, `listeners[0] "http".hostname`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cache tableCache
			s := routesSnapshot(3)
			if _, err := cache.compile(s); err != nil {
				t.Fatal(err)
			}
			s.Version = 2
			tc.mutate(s)
			_, want := compile(s)
			_, got := cache.compile(s)
			if got == nil || !strings.Contains(got.Error(), tc.want) {
				t.Fatalf("cached compile after a valid one: got %v; want an error containing %q", got, tc.want)
			}
			if want == nil || got.Error() != want.Error() {
				t.Fatalf("cached compile error:\n%v\nwant the full compile's:\n%v", got, want)
			}
			// The rejected snapshot left the cache as it was: the valid one compiles again,
			// and the same invalid one is rejected again.
			if _, err := cache.compile(routesSnapshot(3)); err != nil {
				t.Fatalf("valid snapshot after a rejected one: %v", err)
			}
			if _, err := cache.compile(s); err == nil || err.Error() != want.Error() {
				t.Fatalf("invalid snapshot again: got %v; want %v", err, want)
			}
		})
	}
}

// TestTableCacheCertificates checks an HTTPS listener's certificates are parsed again only
// when they change.
func TestTableCacheCertificates(t *testing.T) {
	t.Parallel()
	c1, k1, _ := selfSigned(t, "a.example.com")
	c2, k2, _ := selfSigned(t, "b.example.com")
	snap := func(cert, key []byte) *ir.Snapshot {
		return snapshot(1, ir.Listener{Name: "https", Port: 443, Protocol: ir.ProtocolHTTPS,
			TLS: &ir.TLS{Certificates: []ir.Certificate{{Name: "ns/cert", CertPEM: cert, KeyPEM: key}}}, HTTPRoutes: benchRoutes(0, 2)})
	}
	var tc tableCache
	leaf := func(s *ir.Snapshot) *x509.Certificate {
		c, err := tc.compile(s)
		if err != nil {
			t.Fatal(err)
		}
		return c.ports[443].first.certs[0].Leaf
	}
	first := leaf(snap(c1, k1))
	if again := leaf(snap(slices.Clone(c1), slices.Clone(k1))); again != first {
		t.Errorf("same certificate again: got it parsed anew; want the parsed one reused")
	}
	if other := leaf(snap(c2, k2)); other == first || other.Subject.CommonName != "b.example.com" {
		t.Errorf("changed certificate: got %v; want b.example.com parsed anew", other.Subject.CommonName)
	}
	bad := snap(c1, k2) // key does not match
	if _, err := tc.compile(bad); err == nil || !strings.Contains(err.Error(), `tls certificate "ns/cert"`) {
		t.Errorf("mismatched key: got %v; want a tls certificate error", err)
	}
}

// fillValue sets every field reachable from v to a non-zero value, with one element in every
// slice and every pointer set, except where the types recurse (a mirror's backend has
// filters): a slice or pointer to a type already being filled stays empty.
func fillValue(v reflect.Value, filling map[reflect.Type]bool) {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(1, 0)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillValue(v.Field(i), filling)
		}
	case reflect.Pointer, reflect.Slice:
		et := v.Type().Elem()
		if filling[et] {
			return
		}
		filling[et] = true
		defer delete(filling, et)
		if v.Kind() == reflect.Pointer {
			v.Set(reflect.New(et))
			fillValue(v.Elem(), filling)
		} else {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fillValue(v.Index(0), filling)
		}
	case reflect.String:
		v.SetString("s")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Bool:
		v.SetBool(true)
	default:
		panic(fmt.Sprintf("fillValue: unhandled kind %s (%s)", v.Kind(), v.Type()))
	}
}

// changeNth changes, in place (through v's pointers and slices), the n-th change point found
// walking v: every leaf value, every non-empty slice's length, every non-nil pointer's
// nil-ness. It returns the
// point's path, or "" when v has fewer than n+1.
func changeNth(v reflect.Value, path string, n *int) string {
	hit := func() bool { *n--; return *n < 0 }
	if v.Type() == reflect.TypeFor[time.Time]() {
		if hit() {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Second)))
			return path
		}
		return ""
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if p := changeNth(v.Field(i), path+"."+v.Type().Field(i).Name, n); p != "" {
				return p
			}
		}
		return ""
	case reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		if hit() {
			v.Set(reflect.Zero(v.Type()))
			return path + "=nil"
		}
		return changeNth(v.Elem(), path, n)
	case reflect.Slice:
		if v.Len() == 0 {
			return ""
		}
		if hit() {
			v.Set(reflect.Append(v, v.Index(0)))
			return path + "+elem"
		}
		return changeNth(v.Index(0), path+"[0]", n)
	}
	if !hit() {
		return ""
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	default:
		panic(fmt.Sprintf("changeNth: unhandled kind %s at %s", v.Kind(), path))
	}
	return path
}

// checkSameAndClone checks, for every change point of a fully filled T, that a clone taken
// before changing the original in place no longer equals it: this fails both when same
// ignores a field and when clone shares memory the change reaches.
func checkSameAndClone[T any](t *testing.T, same func(a, b *T) bool, clone func(*T) T) {
	t.Helper()
	points := 0
	for n := 0; ; n++ {
		var orig T
		fillValue(reflect.ValueOf(&orig).Elem(), map[reflect.Type]bool{})
		c := clone(&orig)
		if !same(&orig, &c) {
			t.Fatalf("%T: a clone does not equal its original", orig)
		}
		k := n
		path := changeNth(reflect.ValueOf(&orig).Elem(), "", &k)
		if path == "" {
			break
		}
		points++
		if same(&orig, &c) {
			t.Errorf("%T: after changing %s in place, the earlier clone still equals it; want a difference (field not compared, or memory shared)", orig, path)
		}
	}
	if points < 5 {
		t.Fatalf("%T: only %d change points; the walk is broken", *new(T), points)
	}
}

// TestRouteEqualityCoversEveryField keeps routeeq.go in step with the ir types: a field added
// to a route type and not compared or copied there fails here.
func TestRouteEqualityCoversEveryField(t *testing.T) {
	t.Parallel()
	checkSameAndClone(t, sameHTTPRoute, cloneHTTPRoute)
	checkSameAndClone(t, sameGRPCRoute, cloneGRPCRoute)
	// The certificate cache keys on ir.TLS.Certificates alone: ClientValidation is compiled
	// per port on every snapshot (frontendtls.go). A new ir.TLS field must go to one or the
	// other, so the field count is pinned.
	type certsOnly struct{ Certificates []ir.Certificate }
	checkSameAndClone(t, func(a, b *certsOnly) bool {
		ta, tb := &ir.TLS{Certificates: a.Certificates}, &ir.TLS{Certificates: b.Certificates}
		return sameCerts(cloneCerts(ta), tb) && sameCerts(cloneCerts(tb), ta)
	}, func(x *certsOnly) certsOnly {
		return certsOnly{Certificates: cloneCerts(&ir.TLS{Certificates: x.Certificates})}
	})
	if n := reflect.TypeFor[ir.TLS]().NumField(); n != 2 {
		t.Errorf("ir.TLS has %d fields; want 2 (Certificates, cached; ClientValidation, compiled per snapshot): decide where the new one is compared", n)
	}
}

// TestApplyReleasesCacheOnEveryPath checks that Apply finishes its compile (the cache update
// and its lock) on refusals after compiling too, so the next Apply does not wait forever.
func TestApplyReleasesCacheOnEveryPath(t *testing.T) {
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
