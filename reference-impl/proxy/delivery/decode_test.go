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
