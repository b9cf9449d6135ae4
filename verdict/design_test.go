package verdict

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// designSplits are the splits the suites declare (canary, header canary, gRPC, TCP, mirror),
// plus the small canaries the issue names (97/3) and a three-way split.
var designSplits = []struct {
	name string
	bs   []Backend
}{
	{"90/10", []Backend{{"a", 90}, {"b", 10}}},
	{"80/20", []Backend{{"a", 80}, {"b", 20}}},
	{"70/30", []Backend{{"a", 70}, {"b", 30}}},
	{"70/30/0", []Backend{{"a", 70}, {"b", 30}, {"c", 0}}},
	{"50/50", []Backend{{"a", 50}, {"b", 50}}},
	{"99/1", []Backend{{"a", 99}, {"b", 1}}},
	{"97/3", []Backend{{"a", 97}, {"b", 3}}},
	{"50/30/20", []Backend{{"a", 50}, {"b", 30}, {"c", 20}}},
	{"mirror 25%", []Backend{{Mirrored, 25}, {NotMirrored, 75}}},
	{"mirror 1/3", []Backend{{Mirrored, 1}, {NotMirrored, 2}}},
}

// maxDesignN bounds the most units any suite split may need: at the reference's ~2,000
// requests/s through the cluster's proxy that is under 15 s per verdict.
const maxDesignN = 20_000

// TestDesignTable prints the operating-characteristic table of every split the suites use,
// with exact numbers from the dynamic program of the rule the live test runs, and checks the
// claims of the design: alpha <= 1e-4 per verdict; power >= 0.99 against a 3-point skew
// each way (relative below 3 points: double, a quarter); a starved backend (0%) and a
// flooded one (double its share) caught with probability >= 0.99; at most maxDesignN units.
func TestDesignTable(t *testing.T) {
	t.Parallel()
	for _, tc := range designSplits {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, err := NewSequential(tc.bs, Config{})
			if err != nil {
				t.Fatal(err)
			}
			v := s.Verdict()
			var b strings.Builder
			fmt.Fprintf(&b, "%-10s alpha %.3g (<= %.0g incl. %.0g dependence), min power %.4f, expected n %.0f, max n %d (designed in %s)\n",
				tc.name, v.AchievedAlpha, v.Alpha, s.depAlpha, v.Power, v.ExpectedN, v.NeededN, time.Since(start).Round(time.Millisecond))
			for _, c := range v.OC {
				scope := "exact for the verdict"
				if !c.Exact {
					scope = "this backend's part; the verdict fails at least this often"
				}
				fmt.Fprintf(&b, "  %s declared %s (%s):\n", c.Backend, pctText(c.Declared), scope)
				for _, m := range c.Marks {
					fmt.Fprintf(&b, "    %-9s true %7s  P(fail) %.6f  E[n] %6.0f\n", m.Label, pctText(m.Share), m.Fail, m.ExpectedN)
				}
				fmt.Fprintf(&b, "    curve:")
				for _, p := range c.Points {
					fmt.Fprintf(&b, " %s:%.3g", pctText(p.Share), p.Fail)
				}
				b.WriteString("\n")
			}
			t.Log("\n" + b.String())
			if v.AchievedAlpha > v.Alpha {
				t.Errorf("exact false-failure: got %.3g; want <= %g", v.AchievedAlpha, v.Alpha)
			}
			if v.Power < 0.99 {
				t.Errorf("power against the designed skews: got %.4f; want >= 0.99", v.Power)
			}
			if v.NeededN > maxDesignN {
				t.Errorf("most units needed: got %d; want <= %d", v.NeededN, maxDesignN)
			}
			if len(v.OC) == 0 {
				t.Fatalf("no operating characteristic")
			}
			for _, c := range v.OC {
				for _, label := range []string{"skew down", "skew up", "nothing", "double"} {
					m, ok := c.At(label)
					if !ok {
						if label == "skew up" && c.Declared+min(DefaultDelta, c.Declared) >= 1 || label == "double" && 2*c.Declared >= 1 {
							continue
						}
						t.Errorf("%s: no %q point on the curve", c.Backend, label)
						continue
					}
					if m.Fail < 0.99 {
						t.Errorf("%s %s (true %s): P(fail) %.4f; want >= 0.99", c.Backend, label, pctText(m.Share), m.Fail)
					}
				}
				if m, _ := c.At("declared"); c.Exact && m.Fail > v.Alpha {
					t.Errorf("%s at its declared share: P(fail) %.3g; want <= %g", c.Backend, m.Fail, v.Alpha)
				}
			}
		})
	}
}

// TestOCRuleMatchesSides: with one side, the rule's exact OC is the side's; with both, the
// failure probability lies between the larger side's and the sum (union bound), and matches
// simulation.
func TestOCRuleMatchesSides(t *testing.T) {
	t.Parallel()
	s := newSeq(t, []Backend{{"a", 90}, {"b", 10}}, Config{Alpha: 0.01})
	up, low := s.sides[0], s.sides[1]
	for _, p := range []float64{0.05, 0.08, 0.10, 0.12, 0.15} {
		one := ocRule([]ruleSide{{&up.design, false}}, p)
		if want := up.design.operate(p); abs(one.Fail-want.Fail) > 1e-12 || abs(one.ASN-want.ASN) > 1e-6 {
			t.Errorf("p=%.2f one side: got %+v; want %+v", p, one, want)
		}
		both := ocRule(s.ruleSides(1), p)
		fu := up.design.operate(p).Fail
		fl := low.design.operate(1 - p).Fail
		if both.Fail < max(fu, fl)-1e-12 || both.Fail > fu+fl+1e-12 {
			t.Errorf("p=%.2f: rule fails %.6g; want between max(%.6g, %.6g) and their sum", p, both.Fail, fu, fl)
		}
	}
	// Simulation at the declared share and at 12%, where both sides matter.
	for _, p := range []float64{0.10, 0.12} {
		exact := ocRule(s.ruleSides(1), p)
		fails, meanN := simulate(t, s, nil, []float64{1 - p, p}, 4000, 11)
		ci := ClopperPearson(fails, 4000, 1e-3)
		t.Logf("true %.0f%%: exact P(fail) %.4f E[n] %.0f; simulated %d/4000 (99.9%% CI %.4f-%.4f), mean n %.0f", 100*p, exact.Fail, exact.ASN, fails, ci.Lo, ci.Hi, meanN)
		if exact.Fail < ci.Lo || exact.Fail > ci.Hi {
			t.Errorf("true %.2f: exact %.4f outside simulated CI %.4f-%.4f", p, exact.Fail, ci.Lo, ci.Hi)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
