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
// 1,000-route Gateway applied as a delta (validate and compile the upserted route, patch the
// groups of its hostnames), against compiling the whole snapshot from scratch (the baseline,
// compile, as a proxy without deltas must), in the same run; then the same delta on a
// 5,000-route Gateway, which must cost about the same: a delta costs what it changes, not
// what the table holds. Before the tables were patched (routemap, patchListener), the
// 1,000-route delta cost 0.24 of the full compile on a quiet machine, and allocated 0.9 MB.
func TestApplyIncrementalVsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	snaps, _ := oneRouteChanges(1000)
	full := testing.Benchmark(func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := compile(snaps[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	incr := testing.Benchmark(func(b *testing.B) { benchDeltas(b, 1000) })
	incr5k := testing.Benchmark(func(b *testing.B) { benchDeltas(b, 5000) })
	t.Logf("1000 routes, one route added and one deleted per change: full compile %v/op (%d allocs), delta %v/op (%d allocs), ratio %.3f",
		time.Duration(full.NsPerOp()), full.AllocsPerOp(), time.Duration(incr.NsPerOp()), incr.AllocsPerOp(),
		float64(incr.NsPerOp())/float64(full.NsPerOp()))
	// Time is printed; memory, which does not depend on the machine's load, is checked: a
	// delta that copied or walked table-sized structures would allocate five times as much.
	t.Logf("the same delta on 5000 routes: %v/op, %.2fx the 1000-route delta; %d B/op against %d (%.2fx; a table-sized apply: 5x)",
		time.Duration(incr5k.NsPerOp()), float64(incr5k.NsPerOp())/float64(incr.NsPerOp()),
		incr5k.AllocedBytesPerOp(), incr.AllocedBytesPerOp(), float64(incr5k.AllocedBytesPerOp())/float64(incr.AllocedBytesPerOp()))
	if g := float64(incr5k.AllocedBytesPerOp()) / float64(incr.AllocedBytesPerOp()); g > 1.5 {
		t.Errorf("a one-route delta on 5000 routes allocates %.2fx what it does on 1000; want <= 1.5x (a delta should cost what it changes, not what the table holds)", g)
	}
}

// oneRouteChanges returns two snapshots of n+1 routes that differ in one route, and the
// deltas between them: deltas[i] turns snaps[1-i] into snaps[i].
func oneRouteChanges(n int) ([2]*ir.Snapshot, [2]*ir.Update) {
	base := benchRoutes(0, n)
	var snaps [2]*ir.Snapshot
	var tables [2]*delta.Table
	for i := range snaps {
		rs := append(slices.Clone(base), benchRoutes(n+i, 1)...)
		snaps[i] = snapshot(int64(i+1), ir.Listener{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, HTTPRoutes: rs})
		tables[i] = delta.FromSnapshot(snaps[i])
	}
	return snaps, [2]*ir.Update{delta.Diff(tables[1], tables[0]), delta.Diff(tables[0], tables[1])}
}

// benchDeltas applies oneRouteChanges(n)'s deltas alternately, as prepare does on the proxy.
func benchDeltas(b *testing.B, n int) {
	snaps, deltas := oneRouteChanges(n)
	st, _, err := prepare(nil, delta.Full(delta.FromSnapshot(snaps[1])))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := *deltas[i%2]
		u.BaseVersion, u.Version = st.table.Version, st.table.Version+1
		if st, _, err = prepare(st, &u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyOneRoute is TestApplyIncrementalVsFull's deltas, for profiling.
func BenchmarkApplyOneRoute(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint(n, " routes"), func(b *testing.B) { benchDeltas(b, n) })
	}
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
