package probe

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/traffic/splittest"
)

// TestWeightsProbe drives the weights probe (the code behind gatecheck probe weights)
// against loopback splitters: random per request, deterministic weighted round robin, per
// connection. Must-fail rows use one request in flight, so that the seeded splitter's choices
// map to the send order exactly and the row is deterministic; the exact probability with
// which the row fails is logged from the verdict's operating characteristic.
func TestWeightsProbe(t *testing.T) {
	t.Parallel()
	two := func(a, b float64) []splittest.Backend {
		return []splittest.Backend{{Name: "v2", Weight: a}, {Name: "v3", Weight: b}}
	}
	tests := []struct {
		name        string
		served      []splittest.Backend
		mode        splittest.Mode
		expect      string
		h2c         bool
		concurrency int
		want        Decision
		// mark names the OC point that gives the exact probability of this outcome.
		mark string
		// wantText are lines (or parts) the text report must contain.
		wantText []string
	}{
		{
			name: "correct 90/10", served: two(90, 10), expect: "v2=90,v3=10", want: Pass, mark: "declared",
			wantText: []string{"verdict: PASS: consistent with v2=90%, v3=10% per request", "v3 at 7% or 13% would have failed with probability >= 0.99",
				"99.99% CI", "chi-square:", "p-value", "latency: p50", "P(fail) by true share of v3 (exact): declared 10% -> ", "dependence: none found", "design: expected"},
		},
		{
			name: "87/13 declared 90/10", served: two(87, 13), expect: "v2=90,v3=10", concurrency: 1, want: Fail, mark: "skew up",
			wantText: []string{"verdict: FAIL: backend v3: declared 10%, observed", "evidence it is too high", "<- off"},
		},
		{
			name: "93/7 declared 90/10", served: two(93, 7), expect: "v2=90,v3=10", concurrency: 1, want: Fail, mark: "skew down",
			wantText: []string{"verdict: FAIL: backend v3: declared 10%, observed", "evidence it is too low"},
		},
		{
			name: "starved: 100/0 served where 97/3 declared", served: two(100, 0), expect: "v2=97,v3=3", want: Fail, mark: "nothing",
			wantText: []string{"verdict: FAIL: backend v3: declared 3%, observed 0.0%", "evidence it is too low"},
		},
		{
			name: "47/53 served where 50/50 declared", served: two(47, 53), expect: "v2=50,v3=50", concurrency: 1, want: Fail, mark: "skew down",
			wantText: []string{"verdict: FAIL: backend v2: declared 50%"},
		},
		{
			name: "deterministic weighted round robin at exactly 90/10", served: two(90, 10), mode: splittest.RoundRobin, expect: "v2=90,v3=10", want: Pass, mark: "declared",
			wantText: []string{"verdict: PASS: consistent with v2=90%, v3=10% per request"},
		},
		{
			name: "per connection behind 8 keep-alive connections", served: two(50, 50), mode: splittest.PerConnection, expect: "v2=50,v3=50", want: Fail,
			wantText: []string{"verdict: FAIL: split per connection, not per request", "dependence: DETECTED"},
		},
		{
			name: "correct 70/30/0 over h2c", served: []splittest.Backend{{Name: "a", Weight: 70}, {Name: "b", Weight: 30}},
			expect: "a=70,b=30,c=0", h2c: true, want: Pass, mark: "declared",
			wantText: []string{"h2c", "verdict: PASS"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := splittest.New(tc.served, splittest.Options{Seed: uint64(7 + i), H2C: tc.h2c, Mode: tc.mode})
			defer sp.Close()
			bs, err := ParseBackends(tc.expect)
			if err != nil {
				t.Fatal(err)
			}
			p := &WeightsProbe{
				Driver:   &traffic.Driver{URL: sp.URL + "/api/orders", H2C: tc.h2c, Concurrency: tc.concurrency},
				Backends: bs,
				Converge: 3,
			}
			start := time.Now()
			rep, err := p.Run(t.Context())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s in %s\n%s", tc.name, time.Since(start).Round(time.Millisecond), b.String())
			if tc.mark != "" {
				m, ok := rep.Verdict.OC[0].At(tc.mark)
				if !ok {
					t.Fatalf("no %q point on the operating characteristic", tc.mark)
				}
				t.Logf("exact probability of failing at the served share (%s, true %s): %.6g", tc.mark, pctShare(m.Share), m.Fail)
			}
			if rep.Verdict.Decision != tc.want {
				t.Errorf("decision: got %s; want %s", rep.Verdict.Decision, tc.want)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report: missing %q", w)
				}
			}
		})
	}
}

func TestWeightsProbeUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p := &WeightsProbe{
		Driver:          &traffic.Driver{URL: "http://" + addr},
		Backends:        []Backend{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}},
		Converge:        3,
		ConvergeTimeout: 300 * time.Millisecond,
	}
	_, err = p.Run(t.Context())
	var nc *ErrNotConverged
	if !errors.As(err, &nc) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %v; want ErrNotConverged naming the refused connection", err)
	}
}
