package verdict

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Backend is one declared backend and its weight (relative, as in an HTTPRoute backendRef).
type Backend struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
}

// Config sets the error targets of a verdict. Shares are fractions (0.03 is 3 points).
// Zero fields take the defaults shown.
type Config struct {
	// Alpha bounds the probability that a correct implementation fails the verdict (1e-4):
	// the share test's exact false-failure probability plus the dependence tests' budget.
	Alpha float64 `json:"alpha"`
	// Power is the wanted probability of failing when a share is skewed by Delta (0.99).
	Power float64 `json:"power"`
	// Tolerance is the old way of giving Delta: when Delta is 0 it is 2*Tolerance (so the
	// default 0.015 gives 3 points). It is no longer a claim about the observed share.
	Tolerance float64 `json:"tolerance"`
	// Delta is the skew, in share points, caught with probability Power (0.03). For a share
	// below Delta the skews are relative: up to twice the share, and down to a quarter of it
	// (so a starved backend, 0%, is caught too).
	Delta float64 `json:"delta"`
	// MaxRequests is the most units the test may use (40,000). The design draws what its
	// power needs (printed as the maximum); when that is more than MaxRequests the test can
	// still fail on evidence but ends Inconclusive instead of passing.
	MaxRequests int `json:"maxRequests"`
	// LeakRequests caps a verdict with one positive backend, where only a unit from a
	// zero-weight or undeclared backend can fail it (DefaultLeakRequests; at most
	// MaxRequests).
	LeakRequests int `json:"leakRequests,omitempty"`
	// Unit is what one observation is: "request" (default), "connection", "RPC", "flow".
	Unit string `json:"unit,omitempty"`
}

// Defaults for Config.
const (
	DefaultAlpha     = 1e-4
	DefaultPower     = 0.99
	DefaultTolerance = 0.015
	DefaultDelta     = 2 * DefaultTolerance
	// DefaultMaxRequests is a ceiling, not a sample size: the splits the suites use need at
	// most about 16,000 (50/30/20), so half the default still suffices.
	DefaultMaxRequests = 40_000
	// DefaultLeakRequests caps a verdict with one positive backend, where only a response
	// from a zero-weight or undeclared backend can fail it: 5,000 clean responses rule out
	// a leak rate above 0.092% with probability 0.99.
	DefaultLeakRequests = 5_000
)

// LowSkewFraction is how far below a small share the lower skew goes: a share under Delta
// is tested against a quarter of itself (0.75 of it down), so that a starved backend is
// caught with at least the designed power, and a backend at a quarter of its share as well.
const LowSkewFraction = 0.75

// skews returns the designed skews of share p: up (p1 = p+up) and down (p1 = p-down).
func skews(p, delta float64) (up, down float64) {
	return math.Min(delta, p), math.Min(delta, LowSkewFraction*p)
}

func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	if c.Power == 0 {
		c.Power = DefaultPower
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.Delta == 0 {
		c.Delta = 2 * c.Tolerance
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = DefaultMaxRequests
	}
	if c.Unit == "" {
		c.Unit = "request"
	}
	if c.LeakRequests == 0 {
		c.LeakRequests = DefaultLeakRequests
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if !(c.Alpha > 0 && c.Alpha < 0.5) {
		errs = append(errs, fmt.Errorf("config alpha: got %g; want a probability in (0, 0.5)", c.Alpha))
	}
	if !(c.Power > 0.5 && c.Power < 1) {
		errs = append(errs, fmt.Errorf("config power: got %g; want a probability in (0.5, 1)", c.Power))
	}
	if !(c.Tolerance > 0 && c.Tolerance < 0.5) {
		errs = append(errs, fmt.Errorf("config tolerance: got %g; want a share in (0, 0.5)", c.Tolerance))
	}
	if !(c.Delta > 0 && c.Delta < 1) {
		errs = append(errs, fmt.Errorf("config delta: got %g; want a share in (0, 1)", c.Delta))
	}
	if c.MaxRequests < 1 || c.MaxRequests > 10_000_000 {
		errs = append(errs, fmt.Errorf("config maxRequests: got %d; want 1..10000000", c.MaxRequests))
	}
	return errors.Join(errs...)
}

// Decision is the outcome of a verdict.
type Decision string

const (
	// Pass: no evidence of a skew of Delta or more in any share, from a test that catches
	// such a skew with probability Power (stated exactly in the verdict).
	Pass Decision = "pass"
	// Fail: evidence of a skew (a correct split produces it with probability at most
	// Alpha), a zero-weight or undeclared backend was hit, or the units were not split
	// independently (Dependence says how).
	Fail Decision = "fail"
	// Inconclusive: sampling stopped (cancelled, errors, or fewer units allowed than the
	// power needs) before the test decided; never a pass.
	Inconclusive Decision = "inconclusive"
)

// side is a running one-sided test on one backend's share.
type side struct {
	backend int
	upper   bool
	design  sideDesign
	alpha   float64
	oc0     operating
	oc1     operating
	state   outcome
	at      int
}

// Sequential is a multinomial sequential test: feed it the backend of each unit in send
// order with Add (or AddGrouped, naming the unit's connection) until Done. It is not safe
// for concurrent use.
type Sequential struct {
	cfg        Config
	backends   []Backend
	shares     []float64
	index      map[string]int
	counts     []int
	n          int
	undeclared map[string]int
	sides      []*side
	tested     []int
	// needed is the most units the design can use (its largest side cap); limit is where
	// this run stops: min(needed, MaxRequests), or the leak cap without share tests.
	needed, limit int
	shareAlpha    float64
	depAlpha      float64
	decision      Decision
	reason        string
	decidedAt     int
	late          int
	// shareFailed records that a share side failed (kept when dependence overrides).
	shareFailed bool
	dep         *Dependence

	// hist and groups record, per unit in send order, its backend and connection index,
	// for the dependence tests.
	hist     []int32
	groups   []int32
	groupIdx map[string]int32

	oc  []OCCurve
	asn float64
}

// NewSequential designs the test for the declared backends. Designing computes exact error
// rates; a new split takes up to a few hundred milliseconds (designs are cached).
func NewSequential(backends []Backend, cfg Config) (*Sequential, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(backends) == 0 {
		return nil, errors.New("backends: got none; want at least one name=weight")
	}
	s := &Sequential{cfg: cfg, index: map[string]int{}, undeclared: map[string]int{}, groupIdx: map[string]int32{}}
	total := 0.0
	for i, b := range backends {
		if b.Name == "" {
			return nil, fmt.Errorf("backend %d name: got empty; want a backend identity", i)
		}
		if _, dup := s.index[b.Name]; dup {
			return nil, fmt.Errorf("backend %q: declared twice", b.Name)
		}
		if !(b.Weight >= 0) || math.IsInf(b.Weight, 0) {
			return nil, fmt.Errorf("backend %q weight: got %g; want a finite number >= 0", b.Name, b.Weight)
		}
		s.index[b.Name] = i
		total += b.Weight
	}
	if total <= 0 {
		return nil, errors.New("backends weight: all weights are 0; want at least one positive weight")
	}
	s.backends = append([]Backend(nil), backends...)
	s.counts = make([]int, len(backends))
	var positive []int
	for i, b := range backends {
		s.shares = append(s.shares, b.Weight/total)
		if b.Weight > 0 {
			positive = append(positive, i)
		}
	}
	// With two positive backends (and any hit elsewhere an immediate failure) one count
	// determines the other, so only the smaller share is tested; otherwise every share.
	tested := positive
	if len(positive) == 2 {
		small := positive[0]
		if s.shares[positive[1]] < s.shares[small] {
			small = positive[1]
		}
		tested = []int{small}
	}
	if len(positive) == 1 {
		tested = nil
	}
	type cand struct {
		backend int
		upper   bool
		p1      float64
	}
	var cands []cand
	for _, i := range tested {
		p := s.shares[i]
		up, down := skews(p, cfg.Delta)
		if p+up < 1 {
			cands = append(cands, cand{i, true, p + up})
		}
		if p-down > 0 {
			cands = append(cands, cand{i, false, p - down})
		}
	}
	s.tested = tested
	if len(cands) > 0 {
		s.depAlpha = math.Min(DefaultDependenceAlpha, cfg.Alpha/100)
	}
	s.shareAlpha = cfg.Alpha - s.depAlpha
	// Bonferroni: the verdict fails if any side fails, so the sides' exact false-failure
	// probabilities add up to at most the share test's part of Alpha.
	for _, c := range cands {
		a := s.shareAlpha / float64(len(cands))
		p0, p1 := s.shares[c.backend], c.p1
		if !c.upper {
			p0, p1 = 1-p0, 1-p1
		}
		d, oc0, oc1, ok := designSide(p0, p1, a, 1-cfg.Power)
		if !ok {
			continue
		}
		s.sides = append(s.sides, &side{backend: c.backend, upper: c.upper, design: d, alpha: a, oc0: oc0, oc1: oc1})
		s.needed = max(s.needed, d.Cap)
	}
	s.limit = min(s.needed, cfg.MaxRequests)
	if len(s.sides) == 0 {
		s.limit = min(cfg.MaxRequests, cfg.LeakRequests)
	}
	return s, nil
}

// SetUnit names what one observation is ("request", "connection", "RPC", "flow"); the
// driver that feeds the test knows it.
func (s *Sequential) SetUnit(unit string) {
	if unit != "" {
		s.cfg.Unit = unit
	}
}

// Unit is what one observation is.
func (s *Sequential) Unit() string { return s.cfg.Unit }

// Plan is what the test expects to draw before it decides for a correct split (exact with
// two positive backends, a lower bound otherwise) and the most it may draw in this run; a
// driver prints it before sampling.
func (s *Sequential) Plan() (expected float64, most int) {
	if len(s.sides) == 0 {
		return float64(s.limit), s.limit
	}
	return s.expectedN(), s.limit
}

// Needed is the most units the design can use; Limit where this run stops.
func (s *Sequential) Needed() int { return s.needed }

// Limit is the most units this run will use: min(Needed, MaxRequests), or the leak cap of
// a verdict with one positive backend.
func (s *Sequential) Limit() int { return s.limit }

// Add records one unit served by the named backend and reports whether the test has
// decided. Units after the decision are counted as late and do not change the verdict.
func (s *Sequential) Add(name string) (done bool) { return s.AddGrouped(name, "") }

// AddGrouped is Add for a unit carried by the named connection (any stable id, e.g. the
// client's local address), so that a split per connection can be told from one per request.
func (s *Sequential) AddGrouped(name, conn string) (done bool) {
	if s.decision != "" {
		s.late++
		return true
	}
	g, ok := s.groupIdx[conn]
	if !ok {
		g = int32(len(s.groupIdx))
		s.groupIdx[conn] = g
	}
	i, ok := s.index[name]
	if !ok {
		s.n++
		s.undeclared[name]++
		s.decide(Fail, "")
		return true
	}
	return s.addIn(i, g)
}

// add records a unit from declared backend i on one connection; the simulations call it.
func (s *Sequential) add(i int) (done bool) { return s.addIn(i, 0) }

func (s *Sequential) addIn(i int, g int32) (done bool) {
	s.n++
	s.counts[i]++
	s.hist = append(s.hist, int32(i))
	s.groups = append(s.groups, g)
	if s.shares[i] == 0 {
		s.decide(Fail, "")
		return true
	}
	allAccepted := true
	for _, sd := range s.sides {
		if sd.state != running {
			continue
		}
		k := s.counts[sd.backend]
		if !sd.upper {
			k = s.n - k
		}
		sd.state = sd.design.classify(s.n, k)
		switch sd.state {
		case failed:
			sd.at = s.n
			s.shareFailed = true
			s.decide(Fail, "")
			return true
		case accepted:
			sd.at = s.n
		default:
			allAccepted = false
		}
	}
	switch {
	case allAccepted && len(s.sides) > 0:
		s.decide(Pass, "")
		return true
	case s.n >= s.limit && len(s.sides) == 0:
		// Only the zero-weight check runs: it runs to its cap, the more units the smaller
		// the leak it rules out.
		s.decide(Pass, "")
		return true
	case s.n >= s.limit:
		s.decide(Inconclusive, fmt.Sprintf("inconclusive: needs %s %ss to reach power %.2f (at most; %s expected for a correct split), and %s were allowed; no evidence of a skew in %s",
			commas(s.needed), s.cfg.Unit, s.cfg.Power, commas(int(math.Round(s.expectedN()))), commas(s.cfg.MaxRequests), commas(s.n)))
		return true
	}
	return false
}

// decide records the decision. A pass or a share failure is checked against the dependence
// tests first: units that were not split independently make the share test's error rates
// meaningless, and that is the finding, not the shares.
func (s *Sequential) decide(d Decision, reason string) {
	if (d == Pass || (d == Fail && s.shareFailed && reason == "")) && len(s.sides) > 0 {
		s.dep = dependence(s.hist, s.groups, s.tested, s.names(), s.depAlpha, s.cfg.Unit)
		if s.dep.Detected {
			d, reason = Fail, s.dep.Finding
		}
	}
	s.decision, s.reason, s.decidedAt = d, reason, s.n
}

func (s *Sequential) names() []string {
	out := make([]string, len(s.backends))
	for i, b := range s.backends {
		out[i] = b.Name
	}
	return out
}

// Reset clears the counts and decision, keeping the design, so that one design serves
// many runs.
func (s *Sequential) Reset() {
	for i := range s.counts {
		s.counts[i] = 0
	}
	s.n, s.late, s.decision, s.reason, s.decidedAt = 0, 0, "", "", 0
	s.shareFailed, s.dep = false, nil
	s.undeclared = map[string]int{}
	s.hist, s.groups = s.hist[:0], s.groups[:0]
	s.groupIdx = map[string]int32{}
	for _, sd := range s.sides {
		sd.state, sd.at = running, 0
	}
}

// Done reports whether the test has decided.
func (s *Sequential) Done() bool { return s.decision != "" }

// N returns the number of units counted so far.
func (s *Sequential) N() int { return s.n }

// Abort ends an undecided test as inconclusive with a reason (cancelled, too many errors).
func (s *Sequential) Abort(reason string) {
	if s.decision == "" {
		s.decide(Inconclusive, reason)
	}
}

// FailWith ends an undecided or passing test as failed for a reason outside the share test
// (e.g. non-2xx responses), keeping the counts.
func (s *Sequential) FailWith(reason string) {
	if s.decision != Fail {
		s.decision, s.reason, s.decidedAt = Fail, reason, s.n
	}
}

// Finish ends the stream of units. A test without share tests (only zero-weight and
// undeclared checks) passes if nothing leaked; a running share test is Inconclusive, since
// its error rates hold only at its boundaries or its cap.
func (s *Sequential) Finish() {
	if s.decision != "" {
		return
	}
	if len(s.sides) == 0 && s.n > 0 {
		s.decide(Pass, "")
		return
	}
	s.decide(Inconclusive, fmt.Sprintf("the %ss ran out after %s, before the test decided (it needs up to %s)",
		s.cfg.Unit, commas(s.n), commas(s.needed)))
}

// expectedN is the expected number of units a correct split needs: exact for two positive
// backends, the slowest backend's otherwise (a lower bound). Computed once.
func (s *Sequential) expectedN() float64 {
	if s.asn > 0 {
		return s.asn
	}
	for _, c := range s.Curves() {
		if m, ok := c.At("declared"); ok {
			s.asn = math.Max(s.asn, m.ExpectedN)
		}
	}
	return s.asn
}

func (s *Sequential) ruleSides(b int) []ruleSide {
	var out []ruleSide
	for _, sd := range s.sides {
		if sd.backend == b {
			out = append(out, ruleSide{&sd.design, !sd.upper})
		}
	}
	return out
}

// Curves returns the operating characteristic of every tested backend (computed once).
func (s *Sequential) Curves() []OCCurve {
	if s.oc != nil || len(s.sides) == 0 {
		return s.oc
	}
	for _, b := range s.tested {
		rs := s.ruleSides(b)
		if len(rs) == 0 {
			continue
		}
		p := s.shares[b]
		up, down := skews(p, s.cfg.Delta)
		if p+up >= 1 {
			up = 0
		}
		a := 0.0
		for _, sd := range s.sides {
			if sd.backend == b {
				a = sd.alpha
			}
		}
		c := curveFor(rs, p, up, down, ocKey{p, up, down, a, 1 - s.cfg.Power})
		c.Backend = s.backends[b].Name
		c.Exact = len(s.tested) == 1
		s.oc = append(s.oc, c)
	}
	return s.oc
}

// Verdict summarises the test so far (an undecided test reports Inconclusive).
func (s *Sequential) Verdict() Verdict {
	v := Verdict{
		Decision:    s.decision,
		Method:      method,
		Unit:        s.cfg.Unit,
		N:           s.n,
		Late:        s.late,
		MaxRequests: s.limit,
		NeededN:     s.needed,
		Alpha:       s.cfg.Alpha,
		TargetPower: s.cfg.Power,
		Tolerance:   s.cfg.Tolerance,
		Delta:       s.cfg.Delta,
		Power:       1,
		Dependence:  s.dep,
	}
	if v.Decision == "" {
		v.Decision = Inconclusive
	}
	if len(s.undeclared) > 0 {
		v.Undeclared = map[string]int{}
		for k, c := range s.undeclared {
			v.Undeclared[k] = c
		}
	}
	var posCounts []int
	var posShares []float64
	for i, b := range s.backends {
		br := BackendResult{
			Name:     b.Name,
			Weight:   b.Weight,
			Declared: s.shares[i],
			Count:    s.counts[i],
			Interval: ClopperPearson(s.counts[i], s.n, s.cfg.Alpha),
			Pass:     true,
		}
		if s.n > 0 {
			br.Observed = float64(s.counts[i]) / float64(s.n)
		}
		if s.shares[i] == 0 && s.counts[i] > 0 {
			br.Pass = false
		}
		if s.shares[i] > 0 {
			posCounts = append(posCounts, s.counts[i])
			posShares = append(posShares, s.shares[i])
		}
		v.Backends = append(v.Backends, br)
	}
	v.ChiSquare, v.DF, v.PValue = ChiSquareGOF(posCounts, renormalise(posShares))
	for _, sd := range s.sides {
		st := SideTest{
			Backend:          s.backends[sd.backend].Name,
			Direction:        "above",
			Declared:         s.shares[sd.backend],
			Skewed:           sd.design.P1,
			Boundary:         sd.design.Line,
			Alpha:            sd.alpha,
			ExactAlpha:       sd.oc0.Fail,
			Power:            sd.oc1.Fail,
			ExpectedNCorrect: sd.oc0.ASN,
			ExpectedNSkewed:  sd.oc1.ASN,
			MaxN:             sd.design.Cap,
			FailAt:           sd.design.FailAt,
			AcceptAt:         sd.design.AcceptAt,
			TerminalAt:       sd.design.TerminalAt,
			State:            sd.state.String(),
			DecidedAt:        sd.at,
		}
		if !sd.upper {
			st.Direction = "below"
			st.Boundary = 1 - sd.design.Line
			st.Skewed = 1 - sd.design.P1
		}
		v.AchievedAlpha += sd.oc0.Fail
		v.Power = math.Min(v.Power, sd.oc1.Fail)
		if sd.state == failed {
			v.Backends[sd.backend].Pass = false
		}
		v.Tests = append(v.Tests, st)
	}
	if len(s.sides) == 0 {
		v.Power = 0
	} else {
		v.AchievedAlpha += s.depAlpha
		v.ExpectedN = s.expectedN()
		v.OC = s.Curves()
	}
	if s.needed > s.cfg.MaxRequests && len(s.sides) > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf(
			"the design needs up to %s %ss for power %.2f against its skews and %s were allowed: it can fail on evidence but not pass",
			commas(s.needed), s.cfg.Unit, s.cfg.Power, commas(s.cfg.MaxRequests)))
	}
	v.Hypotheses = s.hypotheses()
	v.Message = s.message(v)
	return v
}

func renormalise(p []float64) []float64 {
	t := 0.0
	for _, x := range p {
		t += x
	}
	out := make([]float64, len(p))
	for i, x := range p {
		out[i] = x / t
	}
	return out
}

func (o outcome) String() string {
	switch o {
	case accepted:
		return "accepted"
	case failed:
		return "failed"
	default:
		return "running"
	}
}

// pctText renders a share as "10%" or "2.5%" or "33.33%".
func pctText(p float64) string {
	s := strconv.FormatFloat(100*p, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// splitText renders the declared split: "v2=90%, v3=10%".
func (s *Sequential) splitText() string {
	var parts []string
	for i, b := range s.backends {
		parts = append(parts, b.Name+"="+pctText(s.shares[i]))
	}
	return strings.Join(parts, ", ")
}

// skewText says, for each tested backend, which skews the test is designed to catch:
// "v3 at 7% or 13%".
func (s *Sequential) skewText() string {
	var parts []string
	for _, b := range s.tested {
		var lo, hi string
		for _, sd := range s.sides {
			if sd.backend != b {
				continue
			}
			if sd.upper {
				hi = pctText(sd.design.P1)
			} else {
				lo = pctText(1 - sd.design.P1)
			}
		}
		switch {
		case lo != "" && hi != "":
			parts = append(parts, fmt.Sprintf("%s at %s or %s", s.backends[b].Name, lo, hi))
		case lo != "":
			parts = append(parts, fmt.Sprintf("%s at %s", s.backends[b].Name, lo))
		case hi != "":
			parts = append(parts, fmt.Sprintf("%s at %s", s.backends[b].Name, hi))
		}
	}
	return strings.Join(parts, ", ")
}

// hypotheses states what the verdict tests, in one sentence.
func (s *Sequential) hypotheses() string {
	if len(s.sides) == 0 {
		return fmt.Sprintf("no %s may reach a zero-weight or undeclared backend (one positive backend: no share to test)", s.cfg.Unit)
	}
	return fmt.Sprintf("pass: no evidence that the split per %s differs from %s; fail: evidence of a skew, designed to catch %s (a skew of %s, relative below that: up to double, down to a quarter) with probability >= %.2f, while a correct split fails with probability <= %.2g",
		s.cfg.Unit, s.splitText(), s.skewText(), ptsText(s.cfg.Delta), s.cfg.Power, s.cfg.Alpha)
}

func ptsText(d float64) string {
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(100*d, 'f', 2, 64), "0"), ".") + " pts"
}

func (s *Sequential) message(v Verdict) string {
	unit := s.cfg.Unit
	var parts []string
	for i, br := range v.Backends {
		b := s.backends[i]
		if s.shares[i] == 0 && br.Count > 0 {
			parts = append(parts, fmt.Sprintf("backend %s: weight 0 but served %s of %s %ss", b.Name, commas(br.Count), commas(v.N), unit))
		}
	}
	names := make([]string, 0, len(v.Undeclared))
	for k := range v.Undeclared {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("backend %q is not declared but served %s %ss", k, commas(v.Undeclared[k]), unit))
	}
	var shareParts []string
	for _, sd := range s.sides {
		if sd.state != failed {
			continue
		}
		br := v.Backends[sd.backend]
		dir, alt := "too high", pctText(sd.design.P1)
		if !sd.upper {
			dir, alt = "too low", pctText(1-sd.design.P1)
		}
		shareParts = append(shareParts, fmt.Sprintf("backend %s: declared %s, observed %.1f%% (%s CI %.1f–%.1f%%, n=%s %ss): evidence it is %s (the test of %s against %s crossed its fail boundary at %s %ss; a correct split fails it with probability %.2g, exact)",
			br.Name, pctText(br.Declared), 100*br.Observed, levelString(br.Interval.Level), 100*br.Interval.Lo, 100*br.Interval.Hi,
			commas(v.N), unit, dir, pctText(br.Declared), alt, commas(sd.at), unit, sd.oc0.Fail))
	}
	if s.dep != nil && s.dep.Detected {
		msg := s.reason
		if len(shareParts) > 0 {
			msg += fmt.Sprintf("; the share test also failed, but it assumes independent %ss, so that is no evidence about the weights (%s)", unit, strings.Join(shareParts, "; "))
		} else {
			msg += fmt.Sprintf("; the share test, which assumes independent %ss, is not judged", unit)
		}
		return strings.Join(append(parts, msg), "; ")
	}
	parts = append(parts, shareParts...)
	if len(shareParts) > 0 && s.dep != nil && len(s.dep.Tests) == 0 && s.dep.Connections > 1 && s.dep.Connections <= 64 {
		// Nothing to test dependence on (the tested backend served fewer than 2 units): a
		// split per connection cannot be told from a skewed one here, so say so.
		parts = append(parts, fmt.Sprintf("too few %ss from the tested backend to tell a split per %s from one per connection (the %s %ss went over %d connections; one connection per %s tells them apart)",
			unit, unit, commas(v.N), unit, s.dep.Connections, unit))
	}
	if s.reason != "" && v.Decision != Inconclusive {
		parts = append(parts, s.reason)
	}
	switch v.Decision {
	case Pass:
		if len(s.sides) == 0 {
			return fmt.Sprintf("no %s from a zero-weight or undeclared backend in n=%s (a leak rate above %.2g%% would show with probability %.4f)",
				unit, commas(v.N), 100*leakBound(v.N, s.cfg.Power), s.cfg.Power)
		}
		return fmt.Sprintf("consistent with %s per %s (n=%s %ss): no evidence of a skew; %s would have failed with probability >= %.4f, and a correct split fails with probability %.2g (exact; expected %s %ss, at most %s)",
			s.splitText(), unit, commas(v.N), unit, s.skewText(), v.Power, v.AchievedAlpha,
			commas(int(math.Round(v.ExpectedN))), unit, commas(s.needed))
	case Fail:
		return strings.Join(parts, "; ")
	default:
		if strings.HasPrefix(s.reason, "inconclusive: ") && len(parts) == 0 {
			return s.reason
		}
		if s.reason != "" {
			parts = append(parts, s.reason)
		}
		if len(parts) == 0 {
			return fmt.Sprintf("undecided after n=%s %ss", commas(v.N), unit)
		}
		return fmt.Sprintf("undecided after n=%s %ss: %s", commas(v.N), unit, strings.Join(parts, "; "))
	}
}

// leakBound is the smallest leak rate that n clean units rule out with probability power:
// (1-r)^n = 1-power.
func leakBound(n int, power float64) float64 {
	if n == 0 {
		return 1
	}
	return 1 - math.Pow(1-power, 1/float64(n))
}
