package delta

import (
	"encoding/json"
	"errors"
	"maps"
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
