package proxy

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// routesSnapshot is one HTTP listener with n routes of the propagation benchmark's shape: own
// hostname, a prefix and an exact match, one backend with three endpoints.
func routesSnapshot(n int) *ir.Snapshot {
	return snapshot(1, ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: benchRoutes(0, n)})
}

// benchRoutes returns routes r-{from} to r-{from+n-1} of routesSnapshot's shape.
func benchRoutes(from, n int) []ir.HTTPRoute {
	var rs []ir.HTTPRoute
	for i := from; i < from+n; i++ {
		rs = append(rs, ir.HTTPRoute{
			RouteMeta: ir.RouteMeta{Namespace: "bench", Name: fmt.Sprintf("r-%05d", i), Hostnames: []string{fmt.Sprintf("r-%05d.bench.example", i)},
				CreationTimestamp: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)},
			Rules: []ir.HTTPRule{{Matches: []ir.HTTPMatch{{Path: prefix("/")}, {Path: exact("/exact")}},
				Backends: []ir.Backend{{Name: "bench/echo:8080", Weight: 1, Endpoints: []ir.Endpoint{{Address: "10.1.0.1", Port: 3000}, {Address: "10.1.0.2", Port: 3000}, {Address: "10.1.0.3", Port: 3000}}}}}},
		})
	}
	return rs
}

// TestCompileParallelVsSerial prints the cost of compiling a 1,000-route snapshot (validation
// beside table building) against validating then building one after the other, the way
// compile worked before (the baseline), measured in the same run.
func TestCompileParallelVsSerial(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	s := routesSnapshot(1000)
	serial := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if err := s.Validate(); err != nil {
				b.Fatal(err)
			}
			if _, err := buildTables(s, freshRoutes{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	parallel := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if _, err := compile(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	t.Logf("1000 routes: validate then build %v/op, compile (side by side) %v/op, ratio %.2f",
		time.Duration(serial.NsPerOp()), time.Duration(parallel.NsPerOp()), float64(parallel.NsPerOp())/float64(serial.NsPerOp()))
}

// TestApplyIncrementalVsFull prints the per-change cost on the proxy of a one-route change to a
// 1,000-route Gateway applied as a delta (validate and compile the upserted route, rebuild its
// listener's tables), against compiling the whole snapshot from scratch (the baseline, compile,
// as a proxy without deltas must), in the same run. Consecutive changes alternate between two
// new routes, so each adds one route and deletes another.
func TestApplyIncrementalVsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	base := benchRoutes(0, 1000)
	var snaps [2]*ir.Snapshot
	var tables [2]*delta.Table
	for i := range snaps {
		rs := append(slices.Clone(base), benchRoutes(1000+i, 1)...)
		snaps[i] = snapshot(int64(i+1), ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs})
		tables[i] = delta.FromSnapshot(snaps[i])
	}
	full := testing.Benchmark(func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := compile(snaps[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	// deltas[i] turns snaps[1-i] into snaps[i].
	deltas := [2]*ir.Update{delta.Diff(tables[1], tables[0]), delta.Diff(tables[0], tables[1])}
	st, _, err := prepare(nil, delta.Full(tables[1]))
	if err != nil {
		t.Fatal(err)
	}
	incr := testing.Benchmark(func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			u := *deltas[i%2]
			u.BaseVersion, u.Version = st.table.Version, st.table.Version+1
			if st, _, err = prepare(st, &u); err != nil {
				b.Fatal(err)
			}
		}
	})
	t.Logf("1000 routes, one route added and one deleted per change: full compile %v/op (%d allocs), delta %v/op (%d allocs), ratio %.3f",
		time.Duration(full.NsPerOp()), full.AllocsPerOp(), time.Duration(incr.NsPerOp()), incr.AllocsPerOp(),
		float64(incr.NsPerOp())/float64(full.NsPerOp()))
}

// TestCompileRejectsInvalidDespiteTables checks that a snapshot failing validation is rejected
// even though its tables were built beside the validation.
func TestCompileRejectsInvalidDespiteTables(t *testing.T) {
	t.Parallel()
	s := routesSnapshot(3)
	s.Listeners[0].HTTPRoutes[1].Hostnames = []string{"Not A Hostname"}
	if _, err := compile(s); err == nil {
		t.Fatalf("invalid hostname: got no error; want one")
	}
	s.Listeners[0].HTTPRoutes[1].Rules[0].Matches[0].Path = &ir.PathMatch{Type: ir.MatchRegularExpression, Value: "("}
	if _, err := compile(s); err == nil {
		t.Fatalf("invalid regular expression: got no error; want one")
	}
}
