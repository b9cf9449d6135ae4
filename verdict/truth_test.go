package verdict

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// stream feeds s from next until it decides (or cap units) and returns the verdict.
func stream(s *Sequential, next func(i int) (backend, conn string)) Verdict {
	s.Reset()
	for i := 0; !s.Done(); i++ {
		b, c := next(i)
		s.AddGrouped(b, c)
	}
	return s.Verdict()
}

func random(rng *rand.Rand, names []string, shares []float64) string {
	u := rng.Float64()
	for i, p := range shares {
		if u < p {
			return names[i]
		}
		u -= p
	}
	return names[len(names)-1]
}

// TestStarvedAndFlooded: a positive-weight backend that gets nothing, or twice its share,
// fails with exact probability >= 0.99 down to a 1% share, and a simulated one fails.
func TestStarvedAndFlooded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		bs     []Backend
		served []float64
		mark   string
	}{
		{"97/3 served 100/0", []Backend{{"a", 97}, {"b", 3}}, []float64{1, 0}, "nothing"},
		{"99/1 served 100/0", []Backend{{"a", 99}, {"b", 1}}, []float64{1, 0}, "nothing"},
		{"99/1 served 98/2", []Backend{{"a", 99}, {"b", 1}}, []float64{0.98, 0.02}, "double"},
		{"97/3 served 94/6", []Backend{{"a", 97}, {"b", 3}}, []float64{0.94, 0.06}, "double"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSeq(t, tc.bs, Config{})
			v := s.Verdict()
			m, ok := v.OC[0].At(tc.mark)
			if !ok || m.Fail < 0.99 {
				t.Fatalf("exact P(fail) %s: got %+v; want >= 0.99", tc.mark, m)
			}
			rng := rand.New(rand.NewPCG(21, 22))
			fails, total := 0, 0
			const runs = 200
			for r := 0; r < runs; r++ {
				v := stream(s, func(int) (string, string) { return random(rng, []string{"a", "b"}, tc.served), "" })
				if v.Decision == Fail {
					fails++
				}
				if v.Decision == Pass && tc.mark == "nothing" {
					t.Fatalf("run %d passed: %s", r, v.Message)
				}
				total += v.N
			}
			t.Logf("exact P(fail) %.6f, expected %.0f units; simulated %d/%d failed, mean %d units; last: %s",
				m.Fail, m.ExpectedN, fails, runs, total/runs, s.Verdict().Message)
			// At power >= 0.99, more than 8 passes in 200 runs has probability < 3e-4.
			if fails < runs-8 {
				t.Errorf("simulated failures: got %d of %d; want >= %d", fails, runs, runs-8)
			}
		})
	}
}

// TestFiftyFiftyServed4753: declared 50/50, served 47/53, fails with the exact probability
// the curve states, and simulation agrees.
func TestFiftyFiftyServed4753(t *testing.T) {
	t.Parallel()
	s := newSeq(t, []Backend{{"a", 50}, {"b", 50}}, Config{})
	v := s.Verdict()
	m, _ := v.OC[0].At("skew down") // the tested backend is a, at 47%
	t.Logf("declared 50/50, served 47/53: exact P(fail) %.4f, expected %.0f requests, at most %d", m.Fail, m.ExpectedN, v.NeededN)
	if m.Share != 0.47 || m.Fail < 0.99 {
		t.Fatalf("exact P(fail) at 47%%: got %+v; want >= 0.99", m)
	}
	fails, meanN := simulate(t, s, nil, []float64{0.47, 0.53}, 600, 31)
	ci := ClopperPearson(fails, 600, 1e-3)
	t.Logf("simulated: %d/600 failed (99.9%% CI %.4f-%.4f), mean %.0f requests", fails, ci.Lo, ci.Hi, meanN)
	if m.Fail < ci.Lo || m.Fail > ci.Hi {
		t.Errorf("exact %.4f outside the simulated 99.9%% CI %.4f-%.4f", m.Fail, ci.Lo, ci.Hi)
	}
}

// TestInconclusiveNeedsN: a cap below what the power needs never passes; it says how many
// units it needs.
func TestInconclusiveNeedsN(t *testing.T) {
	t.Parallel()
	s := newSeq(t, []Backend{{"a", 50}, {"b", 50}}, Config{MaxRequests: 2000})
	rng := rand.New(rand.NewPCG(3, 4))
	passes := 0
	for r := 0; r < 50; r++ {
		v := stream(s, func(int) (string, string) { return random(rng, []string{"a", "b"}, []float64{0.5, 0.5}), "" })
		if v.Decision == Pass {
			passes++
		}
		if r == 0 {
			t.Log(v.Message)
			if v.Decision != Inconclusive || !strings.HasPrefix(v.Message, "inconclusive: needs ") {
				t.Errorf("got %s %q; want inconclusive: needs N requests", v.Decision, v.Message)
			}
		}
	}
	if passes > 0 {
		t.Errorf("passes with too few requests allowed: got %d; want 0", passes)
	}
}

// TestRunsLowerTailExact checks the runs distribution against enumeration of every
// arrangement for small n.
func TestRunsLowerTailExact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ n1, n0 int }{{3, 5}, {4, 4}, {2, 9}, {6, 6}, {1, 7}} {
		n := c.n1 + c.n0
		counts := map[int]int{}
		total := 0
		for mask := 0; mask < 1<<n; mask++ {
			ones := 0
			seq := make([]int32, n)
			for i := 0; i < n; i++ {
				if mask&(1<<i) != 0 {
					seq[i] = 1
					ones++
				}
			}
			if ones != c.n1 {
				continue
			}
			counts[runsOf(seq, 1)]++
			total++
		}
		cum := 0
		for r := 1; r <= c.n1; r++ {
			cum += counts[r]
			want := float64(cum) / float64(total)
			if got := runsLowerTail(r, c.n1, c.n0); abs(got-want) > 1e-12 {
				t.Errorf("n1=%d n0=%d P(R<=%d): got %.15g; want %.15g", c.n1, c.n0, r, got, want)
			}
		}
	}
}

// TestDependenceNamed: a split per connection behind keep-alive and a splitter serving runs
// are reported as what they are, not as a weight failure; a deterministic weighted round
// robin and a correct random split per request pass.
func TestDependenceNamed(t *testing.T) {
	t.Parallel()
	names, shares := []string{"v2", "v3"}, []float64{0.9, 0.1}
	conns := func(i int) string { return string(rune('A' + i%8)) }
	tests := []struct {
		name string
		next func(rng *rand.Rand) func(i int) (string, string)
		want Decision
		text string
	}{
		{"per connection, 8 keep-alive connections", func(rng *rand.Rand) func(int) (string, string) {
			// Each connection is given a backend at random by weight when it opens; 8
			// connections, requests round robin over them.
			backend := map[string]string{}
			return func(i int) (string, string) {
				// Every 200 requests the 8 connections are replaced (a client with a request
				// limit per connection), each given a backend when it opens.
				c := fmt.Sprintf("%s/%d", conns(i), i/200)
				if _, ok := backend[c]; !ok {
					backend[c] = random(rng, names, shares)
				}
				return backend[c], c
			}
		}, Fail, "split per connection, not per request"},
		{"runs of 20", func(rng *rand.Rand) func(int) (string, string) {
			var cur string
			return func(i int) (string, string) {
				if i%20 == 0 {
					cur = random(rng, names, shares)
				}
				return cur, conns(i)
			}
		}, Fail, "served in runs from one backend, not split per request independently"},
		{"deterministic weighted round robin, exactly 90/10", func(*rand.Rand) func(int) (string, string) {
			// Smooth weighted round robin (nginx, Envoy's WRR): v3 every 10th request.
			return func(i int) (string, string) {
				if i%10 == 4 {
					return "v3", conns(i)
				}
				return "v2", conns(i)
			}
		}, Pass, "consistent with v2=90%, v3=10% per request"},
		{"random per request", func(rng *rand.Rand) func(int) (string, string) {
			return func(i int) (string, string) { return random(rng, names, shares), conns(i) }
		}, Pass, "consistent with v2=90%, v3=10% per request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSeq(t, []Backend{{"v2", 90}, {"v3", 10}}, Config{})
			rng := rand.New(rand.NewPCG(41, 42))
			wrong, blind := 0, 0
			const runs = 100
			var last Verdict
			for r := 0; r < runs; r++ {
				last = stream(s, tc.next(rng))
				// A run in which v3 served fewer than 2 requests holds no evidence about
				// dependence (all 8 connections, or the first runs, went to v2); it must
				// still fail, and say it cannot tell.
				if tc.want == Fail && last.Decision == Fail && last.Backends[1].Count < 2 {
					blind++
					if !strings.Contains(last.Message, "too few requests from the tested backend to tell") {
						t.Errorf("run %d: a failure without dependence evidence must say so: %s", r, last.Message)
					}
					continue
				}
				if last.Decision != tc.want || !strings.Contains(last.Message, tc.text) {
					wrong++
					if wrong == 1 {
						t.Logf("run %d: %s: %s", r, last.Decision, last.Message)
					}
				}
			}
			t.Logf("%s: %d of %d runs not %s %q (%d failed without evidence about dependence); last: %s", tc.name, wrong, runs, tc.want, tc.text, blind, last.Message)
			if wrong > 1 {
				t.Errorf("runs not %s with %q: got %d of %d; want <= 1", tc.want, tc.text, wrong, runs)
			}
		})
	}
}
