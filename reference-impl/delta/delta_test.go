package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reference-impl/delta/routemap"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// The package's tests use routemap's trees from 3 keys on, as tables of more than 256 routes do.
func init() { routemap.FlatMax = 2 }

func httpRoute(name string, age int, hosts ...string) ir.HTTPRoute {
	return ir.HTTPRoute{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: name, Hostnames: hosts, CreationTimestamp: time.Unix(int64(age), 0).UTC()},
		Rules: []ir.HTTPRule{{Backends: []ir.Backend{{Name: "ns/svc:80", Weight: 1}}}}}
}

func snapshot(v int64, ls ...ir.Listener) *ir.Snapshot {
	return &ir.Snapshot{Schema: ir.SchemaVersion, Version: v, Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Listeners: ls}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSnapshotRoundTrip: a table assembles back into the snapshot it was split from (routes in
// precedence order, as translation writes them), a route attached to two listeners is one
// entry, and a route twice on a listener gets a "#2" key.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	a, b, c := httpRoute("a", 1, "a.example"), httpRoute("b", 2), httpRoute("c", 2)
	s := snapshot(3,
		ir.Listener{Name: "one", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{a, b, c}},
		ir.Listener{Name: "two", Port: 81, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{a}},
		ir.Listener{Name: "tcp", Port: 82, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "a"}}}})
	tb := FromSnapshot(s)
	if d := cmp.Diff(jsonOf(t, s), jsonOf(t, Snapshot(tb))); d != "" {
		t.Errorf("assembled snapshot differs (-want +got):\n%s", d)
	}
	if e, _ := tb.Routes.Get(ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "a"}); e == nil || len(e.Attachments) != 2 {
		t.Errorf("route a on two listeners: got entry %+v; want 2 attachments", e)
	}
	if n := tb.Routes.Len(); n != 4 {
		t.Errorf("table has %d routes; want 4 (HTTPRoutes a, b, c and TCPRoute a)", n)
	}
	s.Listeners[0].HTTPRoutes = append(s.Listeners[0].HTTPRoutes, b)
	tb = FromSnapshot(s)
	if _, ok := tb.Routes.Get(ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "b#2"}); !ok {
		t.Errorf("route b twice on a listener: no key b#2 in %v", slices.Collect(maps.Keys(maps.Collect(tb.Routes.All()))))
	}
	if got := len(Snapshot(tb).Listeners[0].HTTPRoutes); got != 4 {
		t.Errorf("assembled listener one: %d routes; want 4", got)
	}
}

// TestDiffApply: a diff carries exactly the changed routes and the head when it changed, and
// applying it to the old table gives the new one.
func TestDiffApply(t *testing.T) {
	t.Parallel()
	l := ir.Listener{Name: "one", Port: 80, Protocol: ir.ProtocolHTTP}
	l1, l2 := l, l
	l1.HTTPRoutes = []ir.HTTPRoute{httpRoute("a", 1), httpRoute("b", 2), httpRoute("c", 3)}
	changed := httpRoute("b", 2)
	changed.Rules[0].Backends[0].Weight = 7
	l2.HTTPRoutes = []ir.HTTPRoute{httpRoute("a", 1), changed, httpRoute("d", 4)}
	t1, t2 := FromSnapshot(snapshot(1, l1)), FromSnapshot(snapshot(2, l2))
	if u := Diff(t1, FromSnapshot(snapshot(2, l1))); u != nil {
		t.Errorf("diff of equal tables: got %s; want nil", jsonOf(t, u))
	}
	u := Diff(t1, t2)
	var upserts []string
	for _, e := range u.Upserts {
		upserts = append(upserts, e.Name)
	}
	if d := cmp.Diff([]string{"b", "d"}, upserts); d != "" || len(u.Deletes) != 1 || u.Deletes[0].Name != "c" || u.Head != nil || u.BaseVersion != 1 || u.Version != 2 {
		t.Errorf("diff: upserts %v, deletes %v, head %v, base %d, version %d; want b and d, c, none, 1, 2", upserts, u.Deletes, u.Head, u.BaseVersion, u.Version)
	}
	got, ch, err := Apply(t1, u)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(jsonOf(t, Snapshot(t2)), jsonOf(t, Snapshot(got))); d != "" {
		t.Errorf("applied diff differs from the new table (-want +got):\n%s", d)
	}
	if ch.Full || ch.Head || len(ch.Upserted) != 2 || !ch.Listeners["one"] {
		t.Errorf("changes: %+v; want 2 upserted on listener one", ch)
	}
	if c, _ := t1.Routes.Get(ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "c"}); t1.Routes.Len() != 3 || c == nil {
		t.Errorf("Apply modified the old table")
	}
	// DiffRoutes compares only the routes named: b changed but is not named, so only the
	// new route d and the deleted c are in the delta.
	onlyA := func(k ir.RouteKey) bool { return k.Name == "a" }
	if u := DiffRoutes(t1, t2, onlyA); u == nil || len(u.Upserts) != 1 || u.Upserts[0].Name != "d" || len(u.Deletes) != 1 {
		t.Errorf("DiffRoutes naming a: got %s; want d upserted and c deleted", jsonOf(t, u))
	}
	// A head change.
	l3 := l2
	l3.Hostname = "x.example"
	u = Diff(t2, FromSnapshot(snapshot(3, l3)))
	if u == nil || u.Head == nil || len(u.Upserts) != 0 {
		t.Fatalf("head change: got %v; want the head only", u)
	}
	if _, ch, err := Apply(t2, u); err != nil || !ch.Head || ch.Full {
		t.Errorf("head change applied: %+v, %v; want Head", ch, err)
	}
}

// TestApplyRefuses: wrong bases, and updates that do not fit the table, are refused naming
// what is wrong.
func TestApplyRefuses(t *testing.T) {
	t.Parallel()
	l := ir.Listener{Name: "one", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{httpRoute("a", 1)}}
	t1 := FromSnapshot(snapshot(5, l))
	r := httpRoute("b", 2)
	delta := func(mut func(u *ir.Update)) *ir.Update {
		u := &ir.Update{Gateway: t1.Gateway, Version: 6, BaseVersion: 5,
			Upserts: []ir.RouteEntry{{RouteKey: ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "b"}, Attachments: []ir.Attachment{{Listener: "one", HTTP: &r}}}}}
		mut(u)
		return u
	}
	tests := []struct {
		name      string
		table     *Table
		u         *ir.Update
		wrongBase bool
		want      string
	}{
		{"base behind", t1, delta(func(u *ir.Update) { u.BaseVersion = 4 }), true, "on base 4, but version 5 is applied"},
		{"base ahead", t1, delta(func(u *ir.Update) { u.BaseVersion = 6; u.Version = 7 }), true, "on base 6"},
		{"nothing applied", nil, delta(func(*ir.Update) {}), true, "nothing was applied yet"},
		{"not newer", t1, delta(func(u *ir.Update) { u.Version = 5 }), false, "does not follow its base 5"},
		{"another gateway", t1, delta(func(u *ir.Update) { u.Gateway.Name = "other" }), false, "for gateway ns/other"},
		{"full state without head", t1, delta(func(u *ir.Update) { u.BaseVersion = 0 }), false, "needs a head"},
		{"unknown listener", t1, delta(func(u *ir.Update) { u.Upserts[0].Attachments[0].Listener = "two" }), false, `upserts[0] HTTPRoute ns/b: attachments[0].listener: "two" is not a listener`},
		{"wrong route field", t1, delta(func(u *ir.Update) {
			u.Upserts[0].Attachments[0] = ir.Attachment{Listener: "one", TCP: &ir.TCPRoute{}}
		}), false, "want exactly the HTTPRoute field set"},
		{"unknown kind", t1, delta(func(u *ir.Update) { u.Upserts[0].Kind = "FooRoute" }), false, `kind: unsupported "FooRoute"`},
		{"delete unknown", t1, delta(func(u *ir.Update) { u.Deletes = []ir.RouteKey{{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "zz"}} }), false, "deletes[HTTPRoute ns/zz]: no such route"},
		{"upserted twice", t1, delta(func(u *ir.Update) { u.Upserts = append(u.Upserts, u.Upserts[0]) }), false, "upserted twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Apply(tc.table, tc.u)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrWrongBase) != tc.wrongBase {
				t.Errorf("got %v; want an error containing %q (wrong base: %v)", err, tc.want, tc.wrongBase)
			}
		})
	}
	if _, _, err := Apply(t1, delta(func(*ir.Update) {})); err != nil {
		t.Errorf("the unmodified delta: %v", err)
	}
}

// TestNextMatchesFromSnapshotAndDiff is Next's differential test: a random walk of snapshots
// whose steps change a few named routes (added, removed, redrawn, a route twice on a
// listener, a route on both listeners; now and then a head change, or a step that changes a
// route it does not name) must give the table FromSnapshot gives and the delta DiffRoutes
// gives, at every step, and those tables must keep working as the base of the next step; the
// routes Next files must be copies, not pointers into the snapshot.
func TestNextMatchesFromSnapshotAndDiff(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(5, 6))
	routes := map[string]ir.HTTPRoute{}
	var twice, both string
	snap := func(v int64, hostname string) *ir.Snapshot {
		names := slices.Sorted(maps.Keys(routes))
		var one, two []ir.HTTPRoute
		for _, n := range names {
			one = append(one, routes[n])
			if n == twice {
				one = append(one, routes[n])
			}
			if n == both {
				two = append(two, routes[n])
			}
		}
		return snapshot(v, ir.Listener{Name: "one", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: hostname, HTTPRoutes: one},
			ir.Listener{Name: "two", Port: 81, Protocol: ir.ProtocolHTTP, HTTPRoutes: two})
	}
	for i := range 20 {
		routes[fmt.Sprint("r", i)] = httpRoute(fmt.Sprint("r", i), i)
	}
	prev := FromSnapshot(snap(1, ""))
	fallbacks := 0
	for v := int64(2); v <= 400; v++ {
		var changed []ir.RouteKey
		name := func() string {
			n := fmt.Sprint("r", rnd.IntN(30))
			changed = append(changed, ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: n})
			return n
		}
		// The routes twice and both were on change when they move: name them.
		changed = append(changed, ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: twice}, ir.RouteKey{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: both})
		for range 1 + rnd.IntN(3) {
			switch n := name(); rnd.IntN(5) {
			case 0:
				delete(routes, n)
			case 1:
				twice = n
				if _, ok := routes[n]; !ok {
					routes[n] = httpRoute(n, int(v))
				}
			case 2:
				both = n
				if _, ok := routes[n]; !ok {
					routes[n] = httpRoute(n, int(v))
				}
			default:
				r := httpRoute(n, rnd.IntN(50), fmt.Sprint(n, ".example"))
				r.Rules[0].Backends[0].Weight = int32(rnd.IntN(3))
				routes[n] = r
			}
		}
		hostname := ""
		if v%13 == 0 {
			hostname = "x.example" // a head change
		}
		if v%17 == 0 {
			// A change Next is not told of that it can see: a route gone that is not named.
			for n := range routes {
				if !slices.ContainsFunc(changed, func(k ir.RouteKey) bool { return k.Name == n }) {
					delete(routes, n)
					fallbacks++
					break
				}
			}
		}
		s := snap(v, hostname)
		wantTable := FromSnapshot(s)
		maybe := func(k ir.RouteKey) bool { return slices.Contains(changed, k) }
		if v%17 == 0 {
			maybe = nil // what the caller should have said
		}
		wantDelta := DiffRoutes(prev, wantTable, maybe)
		got, gotDelta := Next(prev, s, changed)
		if d := cmp.Diff(jsonOf(t, Snapshot(wantTable)), jsonOf(t, Snapshot(got))); d != "" {
			t.Fatalf("version %d: Next's table differs from FromSnapshot's (-want +got):\n%s", v, d)
		}
		if d := cmp.Diff(jsonOf(t, wantDelta), jsonOf(t, gotDelta)); d != "" {
			t.Fatalf("version %d: Next's delta differs from DiffRoutes' (-want +got):\n%s", v, d)
		}
		// The routes Next filed must not point into s's route lists: the table would keep
		// every snapshot's list alive (1.6 GB after 4,000 additions to 1,000 routes, seen).
		for _, k := range changed {
			e, ok := got.Routes.Get(k)
			if !ok {
				continue
			}
			for _, a := range e.Attachments {
				for i := range s.Listeners {
					for j := range s.Listeners[i].HTTPRoutes {
						if a.HTTP == &s.Listeners[i].HTTPRoutes[j] && v%17 != 0 {
							t.Fatalf("version %d: route %s points into the snapshot's route list; want a copy", v, k)
						}
					}
				}
			}
		}
		if got.attachments != wantTable.attachments {
			t.Fatalf("version %d: Next's table counts %d attachments; want %d", v, got.attachments, wantTable.attachments)
		}
		prev = got
	}
	if fallbacks == 0 {
		t.Fatalf("the walk never changed a route it did not name; it is broken")
	}
}

// TestNextVsWhole prints what the controller's publish of a one-route change costs with Next
// against FromSnapshot and DiffRoutes of the whole snapshot (the baseline, what it did
// before), at 1,000 routes in the same run, and checks that Next's memory does not follow
// the table (5,000 routes).
func TestNextVsWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	setup := func(n int) (*Table, *ir.Snapshot, []ir.RouteKey) {
		var rs []ir.HTTPRoute
		for i := range n {
			rs = append(rs, httpRoute(fmt.Sprintf("r-%05d", i), i, fmt.Sprintf("r-%05d.example", i)))
		}
		l := ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs}
		prev := FromSnapshot(snapshot(1, l))
		// As after the controller's first Next: the table's map a tree (routemap).
		prev, _ = Next(prev, snapshot(1, l), []ir.RouteKey{{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "r-00000"}})
		l.HTTPRoutes = append(slices.Clone(rs), httpRoute("new", n, "new.example"))
		return prev, snapshot(2, l), []ir.RouteKey{{Kind: ir.KindHTTPRoute, Namespace: "ns", Name: "new"}}
	}
	prev, s, changed := setup(1000)
	whole := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			DiffRoutes(prev, FromSnapshot(s), func(k ir.RouteKey) bool { return k == changed[0] })
		}
	})
	next := func(n int) testing.BenchmarkResult {
		prev, s, changed := setup(n)
		return testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, u := Next(prev, s, changed); u == nil || len(u.Upserts) != 1 {
					b.Fatalf("Next: got %v; want one upsert", u)
				}
			}
		})
	}
	n1, n5 := next(1000), next(5000)
	t.Logf("1000 routes, one added: FromSnapshot+DiffRoutes %v/op (%d B), Next %v/op (%d B), ratio %.3f; Next on 5000 routes %v/op (%d B, %.2fx the bytes)",
		time.Duration(whole.NsPerOp()), whole.AllocedBytesPerOp(), time.Duration(n1.NsPerOp()), n1.AllocedBytesPerOp(),
		float64(n1.NsPerOp())/float64(whole.NsPerOp()), time.Duration(n5.NsPerOp()), n5.AllocedBytesPerOp(),
		float64(n5.AllocedBytesPerOp())/float64(n1.AllocedBytesPerOp()))
	if g := float64(n5.AllocedBytesPerOp()) / float64(n1.AllocedBytesPerOp()); g > 1.5 {
		t.Errorf("Next on 5000 routes allocates %.2fx what it does on 1000; want <= 1.5x", g)
	}
}
