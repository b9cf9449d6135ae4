package probe

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/suites/internal/traffic"
	"github.com/gatecheck/gatecheck/suites/internal/traffic/splittest"
)

func TestWeightsProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		served []splittest.Backend
		expect string
		h2c    bool
		want   Decision
		// wantText are lines (or parts) the text report must contain.
		wantText []string
	}{
		{
			name:   "correct 90/10",
			served: []splittest.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}},
			expect: "v2=90,v3=10", want: Pass,
			wantText: []string{"verdict: PASS: all 2 backends within ±1.5 pts", "99.99% CI", "chi-square:", "p-value", "latency: p50"},
		},
		{
			name:   "skewed 85/15 declared 90/10",
			served: []splittest.Backend{{Name: "v2", Weight: 85}, {Name: "v3", Weight: 15}},
			expect: "v2=90,v3=10", want: Fail,
			wantText: []string{"verdict: FAIL: backend v3: declared 10.0%, observed", "outside tolerance ±1.5 pts", "<- off"},
		},
		{
			name:   "correct 70/30/0 over h2c",
			served: []splittest.Backend{{Name: "a", Weight: 70}, {Name: "b", Weight: 30}},
			expect: "a=70,b=30,c=0", h2c: true, want: Pass,
			wantText: []string{"h2c", "verdict: PASS"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := splittest.New(tc.served, splittest.Options{Seed: uint64(7 + i), H2C: tc.h2c})
			defer sp.Close()
			bs, err := ParseBackends(tc.expect)
			if err != nil {
				t.Fatal(err)
			}
			p := &WeightsProbe{
				Driver:   &traffic.Driver{URL: sp.URL + "/api/orders", H2C: tc.h2c},
				Backends: bs,
				Converge: 3,
			}
			rep, err := p.Run(t.Context())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + b.String())
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
