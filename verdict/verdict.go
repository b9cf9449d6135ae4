package verdict

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

const method = "truncated sequential probability ratio test per share and direction, against a skew of delta (relative below delta), boundaries and cap calibrated on exact error rates by dynamic programming, Bonferroni over sides; exact runs tests for dependence (send order, by connection); Clopper-Pearson intervals at 1-alpha; Pearson chi-square for reporting"

// Verdict is the recorded outcome of a share test; it goes into reports as JSON.
// Shares, tolerances and intervals are fractions (0.1 is 10%).
type Verdict struct {
	Decision Decision `json:"decision"`
	Message  string   `json:"message"`
	Method   string   `json:"method"`
	// Hypotheses says what was tested, in one sentence.
	Hypotheses string `json:"hypotheses"`
	// Unit is what one observation is: request, connection, RPC, flow.
	Unit string `json:"unit"`
	// N is the number of units the decision used; Late arrived after it.
	N    int `json:"n"`
	Late int `json:"late,omitempty"`
	// MaxRequests is where this run would stop; NeededN the most units the design can use
	// (more than MaxRequests: the run cannot pass); ExpectedN the expected units for a
	// correct split (exact with two positive backends, the slowest side's otherwise).
	MaxRequests int     `json:"maxRequests"`
	NeededN     int     `json:"neededN,omitempty"`
	ExpectedN   float64 `json:"expectedN,omitempty"`
	// Alpha is the false-failure target; AchievedAlpha the exact (union) bound of the
	// design plus the dependence tests' budget, which never exceeds it.
	Alpha         float64 `json:"alpha"`
	AchievedAlpha float64 `json:"achievedAlpha"`
	// Power is the exact probability of failing when a tested share is skewed by Delta
	// (relative below Delta; the minimum over tested sides); TargetPower is what was asked.
	Power       float64 `json:"power"`
	TargetPower float64 `json:"targetPower"`
	// Tolerance is kept for readers of old reports: Delta/2, not a claim.
	Tolerance float64 `json:"tolerance"`
	Delta     float64 `json:"delta"`
	// OC is the operating characteristic per tested backend: the exact probability of
	// failing as a function of the true share.
	OC []OCCurve `json:"oc,omitempty"`
	// Dependence is the evidence on whether units were split independently.
	Dependence *Dependence `json:"dependence,omitempty"`
	// ChiSquare, DF and PValue: Pearson's goodness of fit over the positive-weight
	// backends, for reporting only.
	ChiSquare  float64         `json:"chiSquare"`
	DF         int             `json:"df"`
	PValue     float64         `json:"pValue"`
	Backends   []BackendResult `json:"backends"`
	Undeclared map[string]int  `json:"undeclared,omitempty"`
	Tests      []SideTest      `json:"tests,omitempty"`
	Warnings   []string        `json:"warnings,omitempty"`
}

// BackendResult is one backend's declared and observed share.
type BackendResult struct {
	Name     string   `json:"name"`
	Weight   float64  `json:"weight"`
	Declared float64  `json:"declared"`
	Count    int      `json:"count"`
	Observed float64  `json:"observed"`
	Interval Interval `json:"interval"`
	Pass     bool     `json:"pass"`
}

// SideTest records the design and state of one one-sided test.
type SideTest struct {
	Backend   string  `json:"backend"`
	Direction string  `json:"direction"` // "above" or "below" the declared share
	Declared  float64 `json:"declared"`
	// Skewed is the share the side is designed to catch (its alternative).
	Skewed float64 `json:"skewed"`
	// Boundary is the SPRT's drift line: the share at which the walk is level on average.
	Boundary float64 `json:"boundary"`
	// Alpha is the share of the false-failure budget given to this side; ExactAlpha and
	// Power are its exact error rates; ExpectedN* the expected requests to decide.
	Alpha            float64 `json:"alpha"`
	ExactAlpha       float64 `json:"exactAlpha"`
	Power            float64 `json:"power"`
	ExpectedNCorrect float64 `json:"expectedNCorrect"`
	ExpectedNSkewed  float64 `json:"expectedNSkewed"`
	// MaxN is the side's cap: it decides by then.
	MaxN int `json:"maxN"`
	// FailAt, AcceptAt, TerminalAt are the boundaries in counts beyond the boundary line.
	FailAt     float64 `json:"failAt"`
	AcceptAt   float64 `json:"acceptAt"`
	TerminalAt float64 `json:"terminalAt"`
	State      string  `json:"state"`
	DecidedAt  int     `json:"decidedAt,omitempty"`
}

// Passed reports whether the decision is Pass.
func (v Verdict) Passed() bool { return v.Decision == Pass }

func normalQuantile(p float64) float64 { return distuv.UnitNormal.Quantile(p) }

// levelString renders a confidence level the way people write it: 0.9999 -> "99.99%".
func levelString(level float64) string {
	pct := 100 * level
	for prec := 0; prec < 8; prec++ {
		s := strconv.FormatFloat(pct, 'f', prec, 64)
		if v, _ := strconv.ParseFloat(s, 64); math.Abs(v-pct) < 1e-9 {
			return s + "%"
		}
	}
	return fmt.Sprintf("%g%%", pct)
}

// commas renders 4000 as "4,000".
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
