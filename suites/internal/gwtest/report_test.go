package gwtest

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/verdict"
)

// runSplit feeds a seeded random splitter with the given true shares into a verdict.
func runSplit(t *testing.T, declared []verdict.Backend, truth []float64, seed uint64) verdict.Verdict {
	t.Helper()
	s, err := verdict.NewSequential(declared, verdict.Config{MaxRequests: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for !s.Done() {
		u, name := rng.Float64(), declared[len(declared)-1].Name
		for i, p := range truth {
			if u < p {
				name = declared[i].Name
				break
			}
			u -= p
		}
		s.Add(name)
	}
	return s.Verdict()
}

func TestExplainStatesTheEvidence(t *testing.T) {
	t.Parallel()
	declared := []verdict.Backend{{Name: "v1", Weight: 90}, {Name: "v2", Weight: 10}}
	cases := []struct {
		name     string
		truth    []float64
		decision verdict.Decision
	}{
		{"correct 90/10 passes", []float64{0.9, 0.1}, verdict.Pass},
		{"85/15 against declared 90/10 fails", []float64{0.85, 0.15}, verdict.Fail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v := runSplit(t, declared, c.truth, 7)
			if v.Decision != c.decision {
				t.Fatalf("decision: got %s; want %s\n%s", v.Decision, c.decision, Explain(v))
			}
			text := Explain(v)
			for _, want := range []string{"n=", "false-failure rate <=", "power", "CI [", "v1", "v2", strings.ToUpper(string(c.decision))} {
				if !strings.Contains(text, want) {
					t.Errorf("Explain() lacks %q:\n%s", want, text)
				}
			}
			m := WeightMeasurement(v)
			if m.N != v.N || len(m.Backends) != 2 || m.Backends[1].Weight != 10 || m.Decision != model.Decision(c.decision) {
				t.Errorf("WeightMeasurement() = %+v; want n=%d, 2 backends, v2 weight 10, decision %s", m, v.N, c.decision)
			}
			if b := m.Backends[1]; !(b.Lo <= b.Share && b.Share <= b.Hi) {
				t.Errorf("v2 interval [%g, %g] does not hold its share %g", b.Lo, b.Hi, b.Share)
			}
			if err := model.New("t", m).Validate(); err != nil {
				t.Errorf("measurement does not validate: %v", err)
			}
		})
	}
}

func TestExplainZeroWeightCheck(t *testing.T) {
	t.Parallel()
	declared := []verdict.Backend{{Name: "v2", Weight: 1}, {Name: "v3", Weight: 0}}
	clean := runSplit(t, declared, []float64{1, 0}, 3)
	if clean.Decision != verdict.Pass || clean.N != 5000 || !strings.Contains(Explain(clean), "false-failure rate is 0") {
		t.Errorf("clean v2-only run: got %s at n=%d; want pass at the cap, 5000, explained as a zero-weight check:\n%s", clean.Decision, clean.N, Explain(clean))
	}
	leak := runSplit(t, declared, []float64{0.99, 0.01}, 3)
	if leak.Decision != verdict.Fail || !strings.Contains(Explain(leak), "weight 0 but served") {
		t.Errorf("1%% leak to v3: got %s; want fail naming the zero-weight backend:\n%s", leak.Decision, Explain(leak))
	}
}

func TestLatencySeries(t *testing.T) {
	t.Parallel()
	h := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for i := 0; i < 990; i++ {
		_ = h.RecordValue(1000) // 1 ms
	}
	for i := 0; i < 10; i++ {
		_ = h.RecordValue(200_000) // 200 ms
	}
	s := LatencySeries("x", h, 3)
	var total int64
	for _, b := range s.Buckets {
		total += b.Count
		if b.UpperMs <= b.LowerMs {
			t.Errorf("bucket [%g, %g): empty range", b.LowerMs, b.UpperMs)
		}
	}
	if total != 1000 || s.Count != 1000 || s.Errors != 3 {
		t.Errorf("buckets hold %d, count %d, errors %d; want 1000, 1000, 3", total, s.Count, s.Errors)
	}
	if s.P50Ms < 0.99 || s.P50Ms > 1.01 || s.P99Ms < 0.99 || s.P99Ms > 1.01 || s.MaxMs < 199 {
		t.Errorf("p50 %g, p99 %g, max %g; want ~1, ~1, ~200 ms", s.P50Ms, s.P99Ms, s.MaxMs)
	}
	if len(s.Buckets) != 2 {
		t.Errorf("got %d buckets; want 2 (1 ms and 200 ms): %+v", len(s.Buckets), s.Buckets)
	}
	if empty := LatencySeries("none", nil, 0); empty.Count != 0 || len(empty.Buckets) != 0 {
		t.Errorf("LatencySeries(nil) = %+v; want empty", empty)
	}
}
