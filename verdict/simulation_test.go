package verdict

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// simulate runs the sequential test `runs` times against a splitter that serves backend i
// with probability truth[i], one request at a time, and returns the failure count and the
// mean number of requests used.
func simulate(t *testing.T, s *Sequential, _ []string, truth []float64, runs int, seed uint64) (fails int, meanN float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cum := make([]float64, len(truth))
	acc := 0.0
	for i, p := range truth {
		acc += p
		cum[i] = acc
	}
	total := 0
	for r := 0; r < runs; r++ {
		s.Reset()
		for !s.Done() {
			u := rng.Float64() * acc
			i := 0
			for i < len(cum)-1 && u >= cum[i] {
				i++
			}
			s.add(i)
		}
		v := s.Verdict()
		if v.Decision == Fail {
			fails++
		}
		total += v.N
	}
	return fails, float64(total) / float64(runs)
}

func newSeq(t *testing.T, bs []Backend, cfg Config) *Sequential {
	t.Helper()
	s, err := NewSequential(bs, cfg)
	if err != nil {
		t.Fatalf("NewSequential: %v", err)
	}
	return s
}

// TestCanary9010 is the headline: at 90/10 with the default config a correct splitter fails
// with exact probability <= 1e-4 and an 87/13 or 93/7 splitter fails with probability >= 0.99.
// The exact numbers come from the dynamic program; simulation confirms them where simulation
// can see (power, request counts) and TestExactAlphaMatchesSimulation checks the dynamic
// program where failures are common.
func TestCanary9010(t *testing.T) {
	t.Parallel()
	names := []string{"v2", "v3"}
	s := newSeq(t, []Backend{{"v2", 90}, {"v3", 10}}, Config{})
	v := s.Verdict()
	t.Logf("design: exact false-failure %.3g (target %.0g), exact power against a 3-pt skew %.4f (target %.2f), expected %.0f requests, at most %d",
		v.AchievedAlpha, v.Alpha, v.Power, v.TargetPower, v.ExpectedN, v.NeededN)
	for _, st := range v.Tests {
		t.Logf("  side %s %s against %.3f (line %.4f): alpha %.3g power %.4f, expected requests %.0f (correct) / %.0f (skewed), cap %d",
			st.Backend, st.Direction, st.Skewed, st.Boundary, st.ExactAlpha, st.Power, st.ExpectedNCorrect, st.ExpectedNSkewed, st.MaxN)
	}
	// Inside the indifference zone the test promises nothing; the curve says what it does.
	for _, p := range []float64{0.08, 0.09, 0.11, 0.12} {
		oc := ocRule(s.ruleSides(1), p)
		t.Logf("  true v3 %.0f%%: P(fail) %.4f, expected %.0f requests", 100*p, oc.Fail, oc.ASN)
	}
	if v.AchievedAlpha > 1e-4 {
		t.Errorf("exact false-failure: got %.3g; want <= 1e-4", v.AchievedAlpha)
	}
	if v.Power < 0.99 {
		t.Errorf("exact power: got %.4f; want >= 0.99", v.Power)
	}

	const correctRuns, skewRuns = 20000, 3000
	fails, meanN := simulate(t, s, names, []float64{0.90, 0.10}, correctRuns, 1)
	up := ClopperPearson(fails, correctRuns, 0.05).Hi
	t.Logf("correct 90/10: %d failures in %d runs (95%% upper bound %.2g), mean %.0f requests (exact %.0f)", fails, correctRuns, up, meanN, v.ExpectedN)
	// With alpha ~1e-4, 20,000 runs expect ~2 failures; more than 9 has probability < 1e-4.
	if fails > 9 {
		t.Errorf("correct 90/10 failures: got %d in %d runs; want <= 9 (alpha 1e-4)", fails, correctRuns)
	}
	if rel := meanN / v.ExpectedN; rel < 0.97 || rel > 1.03 {
		t.Errorf("mean requests: simulated %.0f, exact %.0f; want within 3%%", meanN, v.ExpectedN)
	}
	for _, tc := range []struct {
		name  string
		truth []float64
	}{
		{"87/13", []float64{0.87, 0.13}},
		{"93/7", []float64{0.93, 0.07}},
	} {
		fails, meanN := simulate(t, s, names, tc.truth, skewRuns, 2)
		power := float64(fails) / skewRuns
		lo := ClopperPearson(fails, skewRuns, 0.05).Lo
		t.Logf("skewed %s: caught %d of %d runs (power %.4f, 95%% lower bound %.4f), mean %.0f requests", tc.name, fails, skewRuns, power, lo, meanN)
		if power < 0.985 {
			t.Errorf("simulated power at %s: got %.4f; want >= 0.985 (exact design power %.4f)", tc.name, power, v.Power)
		}
	}
	// The fixed sample size that reaches the same errors is the baseline the sequential
	// test beats.
	fixed := fixedSampleSize(0.10, 0.13, v.AchievedAlpha/2, 0.01)
	t.Logf("fixed-sample test with the same errors needs %d requests; sequential mean %.0f (ratio %.2f)", fixed, v.ExpectedN, v.ExpectedN/float64(fixed))
}

// TestExactAlphaMatchesSimulation checks the dynamic program against simulation at an alpha
// large enough to count failures (0.01), including a three-way split and the cap.
func TestExactAlphaMatchesSimulation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		bs      []Backend
		truth   []float64
		cfg     Config
		runs    int
		useSide bool
	}{
		{"90/10 at alpha 0.01", []Backend{{"a", 90}, {"b", 10}}, []float64{0.9, 0.1}, Config{Alpha: 0.01}, 10000, true},
		{"50/50 at alpha 0.01", []Backend{{"a", 50}, {"b", 50}}, []float64{0.5, 0.5}, Config{Alpha: 0.01}, 3000, true},
		{"50/30/20 at alpha 0.01", []Backend{{"a", 50}, {"b", 30}, {"c", 20}}, []float64{0.5, 0.3, 0.2}, Config{Alpha: 0.01}, 3000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSeq(t, tc.bs, tc.cfg)
			v := s.Verdict()
			names := make([]string, len(tc.bs))
			for i, b := range tc.bs {
				names[i] = b.Name
			}
			fails, meanN := simulate(t, s, names, tc.truth, tc.runs, 3)
			rate := float64(fails) / float64(tc.runs)
			ci := ClopperPearson(fails, tc.runs, 1e-3)
			t.Logf("exact alpha %.4g; simulated %.4g (%d/%d, 99.9%% CI %.4g-%.4g), mean %.0f requests", v.AchievedAlpha, rate, fails, tc.runs, ci.Lo, ci.Hi, meanN)
			if tc.useSide && (v.AchievedAlpha < ci.Lo || v.AchievedAlpha > ci.Hi) {
				// With one tested share the union bound is (almost) exact.
				t.Errorf("exact alpha %.4g outside the simulated 99.9%% CI %.4g-%.4g", v.AchievedAlpha, ci.Lo, ci.Hi)
			}
			if ci.Lo > tc.cfg.Alpha {
				t.Errorf("simulated false failure %.4g (CI low %.4g); want <= alpha %g", rate, ci.Lo, tc.cfg.Alpha)
			}
		})
	}
}

// TestZeroWeightAndUndeclared: any response from a zero-weight or undeclared backend fails.
func TestZeroWeightAndUndeclared(t *testing.T) {
	t.Parallel()
	bs := []Backend{{"a", 70}, {"b", 30}, {"c", 0}}
	t.Run("correct 70/30/0 passes", func(t *testing.T) {
		t.Parallel()
		s := newSeq(t, bs, Config{})
		fails, meanN := simulate(t, s, []string{"a", "b", "c"}, []float64{0.7, 0.3, 0}, 200, 4)
		if fails != 0 {
			t.Errorf("failures: got %d; want 0", fails)
		}
		t.Logf("mean %.0f requests", meanN)
	})
	t.Run("one hit on the zero-weight backend fails", func(t *testing.T) {
		t.Parallel()
		s := newSeq(t, bs, Config{})
		for i := 0; i < 100; i++ {
			s.Add([]string{"a", "a", "b"}[i%3])
		}
		s.Add("c")
		v := s.Verdict()
		if v.Decision != Fail {
			t.Fatalf("decision: got %s; want fail", v.Decision)
		}
		want := "backend c: weight 0 but served 1 of 101 requests"
		if v.Message != want {
			t.Errorf("message: got %q; want %q", v.Message, want)
		}
	})
	t.Run("undeclared backend fails", func(t *testing.T) {
		t.Parallel()
		s := newSeq(t, bs, Config{})
		s.Add("a")
		s.Add("rogue")
		if v := s.Verdict(); v.Decision != Fail || v.Undeclared["rogue"] != 1 {
			t.Errorf("got decision %s undeclared %v; want fail with rogue=1", v.Decision, v.Undeclared)
		}
	})
	t.Run("single backend runs to the cap", func(t *testing.T) {
		t.Parallel()
		s := newSeq(t, []Backend{{"a", 0}, {"b", 100}}, Config{MaxRequests: 300})
		n := 0
		for !s.Add("b") {
			n++
		}
		v := s.Verdict()
		if v.Decision != Pass || v.N != 300 {
			t.Errorf("got %s at n=%d; want pass at n=300", v.Decision, v.N)
		}
		t.Log(v.Message)
	})
}

// TestSkewMessage checks the sentence a person reads when a share is off.
func TestSkewMessage(t *testing.T) {
	t.Parallel()
	s := newSeq(t, []Backend{{"v2", 90}, {"v3", 10}}, Config{})
	// 15% to v3, at random (a fixed pattern such as 3 in every 20 comes in runs, which the
	// dependence test reports instead).
	rng := rand.New(rand.NewPCG(8, 9))
	for !s.Done() {
		if rng.Float64() < 0.15 {
			s.Add("v3")
		} else {
			s.Add("v2")
		}
	}
	v := s.Verdict()
	if v.Decision != Fail {
		t.Fatalf("decision: got %s; want fail", v.Decision)
	}
	t.Log(v.Message)
	re := `^backend v3: declared 10%, observed 1[4-6]\.\d% \(99\.99% CI \d+\.\d–\d+\.\d%, n=[0-9,]+ requests\): evidence it is too high \(the test of 10% against 13% crossed its fail boundary at [0-9,]+ requests; a correct split fails it with probability [0-9.e-]+, exact\)$`
	if !regexpMatch(re, v.Message) {
		t.Errorf("message: got %q; want match %s", v.Message, re)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bs   []Backend
		cfg  Config
		want string
	}{
		{"negative weight", []Backend{{"a", -1}, {"b", 1}}, Config{}, `backend "a" weight: got -1; want a finite number >= 0`},
		{"all zero", []Backend{{"a", 0}}, Config{}, "backends weight: all weights are 0; want at least one positive weight"},
		{"duplicate", []Backend{{"a", 1}, {"a", 1}}, Config{}, `backend "a": declared twice`},
		{"alpha", []Backend{{"a", 1}}, Config{Alpha: 2}, "config alpha: got 2; want a probability in (0, 0.5)"},
		{"delta", []Backend{{"a", 1}}, Config{Delta: 1.5}, "config delta: got 1.5; want a share in (0, 1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewSequential(tc.bs, tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error: got %v; want %q", err, tc.want)
			}
		})
	}
}

func TestMirrorVerdict(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	draw := func(n int, p float64) []bool {
		out := make([]bool, n)
		for i := range out {
			out[i] = rng.Float64() < p
		}
		return out
	}
	need := func(f float64) int {
		n, err := MirrorRequests(f, Config{}, 500)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	all := make([]bool, 500)
	for i := range all {
		all[i] = true
	}
	missOne := append([]bool(nil), all...)
	missOne[250] = false
	tests := []struct {
		name     string
		fraction float64
		mirrored []bool
		want     Decision
	}{
		{"full mirror, all seen", 1, all, Pass},
		{"full mirror, one missed", 1, missOne, Fail},
		{"no mirror declared, one copied", 0, append(make([]bool, 300), true), Fail},
		{"50 percent, correct", 0.5, draw(need(0.5), 0.5), Pass},
		{"50 percent declared, 40 delivered", 0.5, draw(need(0.5), 0.4), Fail},
		{"10 percent, correct", 0.1, draw(need(0.1), 0.1), Pass},
		{"10 percent declared, 14 delivered", 0.1, draw(need(0.1), 0.14), Fail},
		{"25 percent declared, 22 delivered (short of its percent)", 0.25, draw(need(0.25), 0.22), Fail},
		{"50 percent, too few requests for the power", 0.5, draw(2000, 0.5), Inconclusive},
		{"75 percent, correct", 0.75, draw(need(0.75), 0.75), Pass},
	}
	for _, tc := range tests {
		v, err := MirrorVerdict(tc.fraction, tc.mirrored, Config{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v.Decision != tc.want {
			t.Errorf("%s: decision got %s; want %s (%s)", tc.name, v.Decision, tc.want, v.Message)
		}
		t.Logf("%s: %s", tc.name, v.Message)
		if tc.fraction == 0.75 && !strings.Contains(v.Message, "a mirror copying 72% or 78% would have failed") {
			t.Errorf("%s: message names the wrong skews: %s", tc.name, v.Message)
		}
	}
}
