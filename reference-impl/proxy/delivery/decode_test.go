package delivery

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

func routes(n int, host string) []ir.HTTPRoute {
	var out []ir.HTTPRoute
	for i := range n {
		out = append(out, ir.HTTPRoute{
			RouteMeta: ir.RouteMeta{Namespace: "ns", Name: fmt.Sprintf("r-%d", i), Hostnames: []string{fmt.Sprintf("r-%d.%s", i, host)},
				CreationTimestamp: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)},
			Rules: []ir.HTTPRule{{Index: 0, Matches: []ir.HTTPMatch{{Path: &ir.PathMatch{Type: ir.MatchPathPrefix, Value: "/"}}},
				Backends: []ir.Backend{{Name: "ns/echo:80", Weight: 1, Endpoints: []ir.Endpoint{{Address: "10.0.0.1", Port: 3000}}}},
				Timeouts: &ir.Timeouts{Request: ir.Duration(time.Second)}}},
		})
	}
	return out
}

// TestDecodeMatchesUnmarshal checks that decoding with the route cache gives exactly what a
// plain json.Unmarshal gives, across snapshots that add, change, drop and repeat routes.
func TestDecodeMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	gw := ir.NamespacedName{Namespace: "infra", Name: "gw"}
	grpc := []ir.GRPCRoute{{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "g"}, Rules: []ir.GRPCRule{{Index: 0}}}}
	snaps := []ir.Snapshot{
		{Version: 1, Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: routes(3, "a")}}},
		{Version: 2, Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: routes(4, "a"), GRPCRoutes: grpc}}},
		{Version: 3, Gateway: gw, Listeners: []ir.Listener{
			{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: append(routes(2, "a"), routes(2, "b")...)},
			{Name: "tcp", Port: 9000, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "t"}}}},
		}},
		{Version: 4, Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP}}},
		{Version: 5, Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: routes(3, "a"), GRPCRoutes: grpc}}},
	}
	var c routeCache
	for _, s := range snaps {
		line, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want ir.Snapshot
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		// The fast path must handle what the controller's encoder writes, not fall back.
		if _, _, ok := splitRoutes(line, nil); !ok {
			t.Errorf("version %d: splitRoutes: got not ok; want ok", s.Version)
		}
		got, err := c.decode(line)
		if err != nil {
			t.Fatalf("version %d: decode: %v", s.Version, err)
		}
		if d := cmp.Diff(&want, got); d != "" {
			t.Errorf("version %d: decoded snapshot differs from json.Unmarshal (-want +got):\n%s", s.Version, d)
		}
	}
	if _, err := c.decode([]byte(`{"version":6,"listeners":[{"name":"http","httpRoutes":[{"rules":"oops"}]}]}`)); err == nil {
		t.Errorf("route of the wrong shape: got no error; want one")
	}
}

// BenchmarkDecode compares decoding a 1,000-route snapshot that differs from the previous one
// in one route, with the cache and with plain json.Unmarshal (the baseline).
func BenchmarkDecode(b *testing.B) {
	gw := ir.NamespacedName{Namespace: "infra", Name: "gw"}
	rs := routes(1001, "a")
	lines := make([][]byte, 2)
	for i := range lines {
		s := ir.Snapshot{Version: int64(i), Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs[:1000+i]}}}
		lines[i], _ = json.Marshal(s)
	}
	b.Run("unmarshal", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var s ir.Snapshot
			if err := json.Unmarshal(lines[i%2], &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var c routeCache
		for i := 0; b.Loop(); i++ {
			if _, err := c.decode(lines[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeOneAddedVsUnmarshal prints the per-change decode cost of a 1,000-route snapshot
// line whose successor has one route more, in the middle of the list (the cache), against
// json.Unmarshal of the line (the baseline), measured in the same run. Lines alternate
// between two new routes, so each change adds a route the cache has not seen (and drops one).
func TestDecodeOneAddedVsUnmarshal(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	gw := ir.NamespacedName{Namespace: "infra", Name: "gw"}
	base, extra := routes(1000, "a"), routes(2, "new")
	var lines [2][]byte
	for i := range lines {
		rs := append(append(slices.Clone(base[:500]), extra[i]), base[500:]...)
		s := ir.Snapshot{Version: int64(i), Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs}}}
		lines[i], _ = json.Marshal(s)
	}
	unmarshal := testing.Benchmark(func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var s ir.Snapshot
			if err := json.Unmarshal(lines[i%2], &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	var c routeCache
	cached := testing.Benchmark(func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := c.decode(lines[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	t.Logf("1000 routes, one route added per change (%d-byte line): json.Unmarshal %v/op, cached decode %v/op (%d allocs), ratio %.3f",
		len(lines[0]), time.Duration(unmarshal.NsPerOp()), time.Duration(cached.NsPerOp()), cached.AllocsPerOp(),
		float64(cached.NsPerOp())/float64(unmarshal.NsPerOp()))
}

// TestSplitRoutesTrickyStrings feeds strings that look like structure (quotes, escapes,
// brackets, the key names themselves) and checks the split decode still equals
// json.Unmarshal, with and without whitespace between tokens.
func TestSplitRoutesTrickyStrings(t *testing.T) {
	t.Parallel()
	gw := ir.NamespacedName{Namespace: "infra", Name: `gw"],"listeners":[{`}
	rs := routes(3, "a")
	rs[0].Name = `"httpRoutes":[{"x":1}]`
	rs[1].Rules[0].Matches[0].Headers = []ir.HeaderMatch{{Type: ir.MatchExact, Name: "x", Value: `\\"}]}{[\`}}
	rs[2].Hostnames = []string{"\u0022grpcRoutes\u0022:[", "}}}]]]"}
	s := ir.Snapshot{Version: 9, Gateway: gw, Listeners: []ir.Listener{
		{Name: "httpRoutes", Port: 80, Protocol: ir.ProtocolHTTP, Hostname: `grpcRoutes`, HTTPRoutes: rs},
		{Name: "tcp", Port: 9000, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "httpRoutes"}}}},
		{Name: "g", Port: 81, Protocol: ir.ProtocolHTTP, GRPCRoutes: []ir.GRPCRoute{{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "[{"}}}, HTTPRoutes: rs[1:]},
	}}
	compact, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	indented, err := json.MarshalIndent(s, " ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		line []byte
	}{{"compact", compact}, {"indented", indented}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want ir.Snapshot
			if err := json.Unmarshal(tc.line, &want); err != nil {
				t.Fatal(err)
			}
			skeleton, lists, ok := splitRoutes(tc.line, nil)
			if !ok {
				t.Fatalf("splitRoutes: got not ok; want ok")
			}
			if len(lists) != 3 {
				t.Errorf("route lists: got %d; want 3 (http of listeners 0 and 2, grpc of 2)", len(lists))
			}
			var c routeCache
			got, err := c.decodeSplit(skeleton, lists)
			if err != nil {
				t.Fatalf("decodeSplit: %v", err)
			}
			if d := cmp.Diff(&want, got); d != "" {
				t.Errorf("split decode differs from json.Unmarshal (-want +got):\n%s", d)
			}
		})
	}
	for _, bad := range []string{`{"listeners":[{"httpRoutes":[{"a":"unterminated}]}]}`, `{"listeners":[{"httpRoutes":[{}`} {
		if _, _, ok := splitRoutes([]byte(bad), nil); ok {
			t.Errorf("splitRoutes(%s): got ok; want not ok", bad)
		}
	}
}

// TestDecodeReusesShiftedRoutes walks through the changes consecutive snapshots make to a
// route list (insert, delete, replace, move, several at once) and checks that the result equals
// json.Unmarshal, that a route unchanged since the previous line is the previous decoded value
// (not decoded again), and that the general path (no split) reuses routes the same way.
func TestDecodeReusesShiftedRoutes(t *testing.T) {
	t.Parallel()
	gw := ir.NamespacedName{Namespace: "infra", Name: "gw"}
	pool := routes(40, "a")
	changed := routes(40, "b") // same names, other hostnames: a changed route
	pick := func(idx ...int) []ir.HTTPRoute {
		var out []ir.HTTPRoute
		for _, i := range idx {
			if i < 0 {
				out = append(out, changed[-i])
			} else {
				out = append(out, pool[i])
			}
		}
		return out
	}
	steps := []struct {
		name string
		rs   []ir.HTTPRoute
	}{
		{"first", pick(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
		{"insert in the middle", pick(0, 1, 2, 3, 20, 4, 5, 6, 7, 8, 9)},
		{"delete", pick(0, 1, 2, 20, 4, 5, 6, 7, 8, 9)},
		{"replace", pick(0, 1, 2, 20, -4, 5, 6, 7, 8, 9)},
		{"delete several", pick(0, 20, -4, 8, 9)},
		{"insert at both ends", pick(30, 0, 20, -4, 8, 9, 31)},
		{"move far", pick(9, 30, 0, 20, -4, 8, 31)},
		{"unchanged", pick(9, 30, 0, 20, -4, 8, 31)},
	}
	for _, split := range []bool{true, false} {
		var c routeCache
		var prev []ir.HTTPRoute
		for v, st := range steps {
			s := ir.Snapshot{Version: int64(v), Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: st.rs}}}
			line, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var want ir.Snapshot
			if err := json.Unmarshal(line, &want); err != nil {
				t.Fatal(err)
			}
			var got *ir.Snapshot
			if split {
				got, err = c.decode(line)
			} else {
				// The general path, as taken when a line does not split.
				var w wireSnapshot
				if err := json.Unmarshal(line, &w); err != nil {
					t.Fatal(err)
				}
				var run routeRun[ir.HTTPRoute]
				run, err = decodeRoutes(w.Listeners[0].HTTPRoutes, nil, runAt(c.http, 0))
				c.http = []routeRun[ir.HTTPRoute]{run}
				got = &ir.Snapshot{Listeners: []ir.Listener{{HTTPRoutes: run.routes}}}
			}
			if err != nil {
				t.Fatalf("split %v, %s: decode: %v", split, st.name, err)
			}
			if split {
				if d := cmp.Diff(&want, got); d != "" {
					t.Errorf("split %v, %s: decoded differs from json.Unmarshal (-want +got):\n%s", split, st.name, d)
				}
			} else if d := cmp.Diff(st.rs, got.Listeners[0].HTTPRoutes); d != "" {
				t.Errorf("split %v, %s: decoded routes differ (-want +got):\n%s", split, st.name, d)
			}
			reused := 0
			for _, r := range got.Listeners[0].HTTPRoutes {
				for _, p := range prev {
					if &p.Rules[0] == &r.Rules[0] {
						reused++
					}
				}
			}
			// Every route of the previous line still here is reused, except one moved
			// further than matchWindow ("move far" moves route 9 to the front).
			wantReused := 0
			for _, r := range st.rs {
				for _, p := range prev {
					if p.Name == r.Name && p.Hostnames[0] == r.Hostnames[0] {
						wantReused++
					}
				}
			}
			if st.name == "move far" {
				wantReused--
			}
			if reused != wantReused {
				t.Errorf("split %v, %s: %d routes reused from the previous line; want %d", split, st.name, reused, wantReused)
			}
			prev = got.Listeners[0].HTTPRoutes
		}
	}
}
