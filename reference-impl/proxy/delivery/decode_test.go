package delivery

import (
	"encoding/json"
	"fmt"
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
		if _, _, ok := splitRoutes(line); !ok {
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
			skeleton, lists, ok := splitRoutes(tc.line)
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
		if _, _, ok := splitRoutes([]byte(bad)); ok {
			t.Errorf("splitRoutes(%s): got ok; want not ok", bad)
		}
	}
}
