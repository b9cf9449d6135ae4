package verdict

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Backend is one declared backend and its weight (relative, as in an HTTPRoute backendRef).
type Backend struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
}

// Config sets the error targets of a verdict. Shares are fractions (0.015 is 1.5 points).
// Zero fields take the defaults shown.
type Config struct {
	// Alpha bounds the probability that a correct implementation fails the verdict (1e-4).
	Alpha float64 `json:"alpha"`
	// Power is the wanted probability of failing when a share is off by Delta (0.99).
	Power float64 `json:"power"`
	// Tolerance is how far (absolute) an observed share may sit from its declared share
	// before the evidence counts against it (0.015).
	Tolerance float64 `json:"tolerance"`
	// Delta is the skew that must be caught with probability Power (2*Tolerance).
	Delta float64 `json:"delta"`
	// MaxRequests caps the identified responses the test may use (5000).
	MaxRequests int `json:"maxRequests"`
}

// Defaults for Config.
const (
	DefaultAlpha       = 1e-4
	DefaultPower       = 0.99
	DefaultTolerance   = 0.015
	DefaultMaxRequests = 5000
)

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
	if !(c.Delta > c.Tolerance && c.Delta < 1) {
		errs = append(errs, fmt.Errorf("config delta: got %g; want a share above the tolerance %g and below 1", c.Delta, c.Tolerance))
	}
	if c.MaxRequests < 1 || c.MaxRequests > 10_000_000 {
		errs = append(errs, fmt.Errorf("config maxRequests: got %d; want 1..10000000", c.MaxRequests))
	}
	return errors.Join(errs...)
}

// Decision is the outcome of a verdict.
type Decision string

const (
	// Pass: every share is within tolerance (with the stated false-failure bound).
	Pass Decision = "pass"
	// Fail: some share is off, or a zero-weight or undeclared backend was hit.
	Fail Decision = "fail"
	// Inconclusive: sampling stopped (cancelled, errors) before the test decided.
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

// Sequential is a multinomial sequential test: feed it the backend of each response in
// arrival order with Add until Done. It is not safe for concurrent use.
type Sequential struct {
	cfg        Config
	backends   []Backend
	shares     []float64
	index      map[string]int
	counts     []int
	n          int
	undeclared map[string]int
	sides      []*side
	decision   Decision
	reason     string
	decidedAt  int
	late       int
}

// NewSequential designs the test for the declared backends. Designing computes exact error
// rates and takes a few milliseconds per tested share.
func NewSequential(backends []Backend, cfg Config) (*Sequential, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(backends) == 0 {
		return nil, errors.New("backends: got none; want at least one name=weight")
	}
	s := &Sequential{cfg: cfg, index: map[string]int{}, undeclared: map[string]int{}}
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
		if s.shares[positive[1]] <= s.shares[small] {
			small = positive[1]
		}
		tested = []int{small}
	}
	type cand struct {
		backend int
		upper   bool
	}
	var cands []cand
	for _, i := range tested {
		p := s.shares[i]
		if p+cfg.Delta < 1 {
			cands = append(cands, cand{i, true})
		}
		if p-cfg.Delta > 0 {
			cands = append(cands, cand{i, false})
		}
	}
	// Bonferroni: the verdict fails if any side fails, so the sides' exact false-failure
	// probabilities add up to at most Alpha.
	for _, c := range cands {
		a := cfg.Alpha / float64(len(cands))
		p0 := s.shares[c.backend]
		if !c.upper {
			p0 = 1 - p0
		}
		d, oc0, oc1, ok := designSide(p0, cfg.Tolerance, cfg.Delta, a, 1-cfg.Power, cfg.MaxRequests)
		if !ok {
			continue
		}
		s.sides = append(s.sides, &side{backend: c.backend, upper: c.upper, design: d, alpha: a, oc0: oc0, oc1: oc1})
	}
	return s, nil
}

// Add records one response served by the named backend and reports whether the test has
// decided. Responses after the decision are counted as late and do not change the verdict.
func (s *Sequential) Add(name string) (done bool) {
	if s.decision != "" {
		s.late++
		return true
	}
	i, ok := s.index[name]
	if !ok {
		s.n++
		s.undeclared[name]++
		s.decide(Fail, "")
		return true
	}
	return s.add(i)
}

// add records a response from declared backend i; the simulation tests call it directly.
func (s *Sequential) add(i int) (done bool) {
	s.n++
	s.counts[i]++
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
			s.decide(Fail, "")
			return true
		case accepted:
			sd.at = s.n
		default:
			allAccepted = false
		}
	}
	// Without share tests (a single positive backend) only the zero-weight check runs, so
	// it runs to the cap: the more requests, the smaller the leak it rules out.
	if (allAccepted && len(s.sides) > 0) || s.n >= s.cfg.MaxRequests {
		s.decide(Pass, "")
		return true
	}
	return false
}

func (s *Sequential) decide(d Decision, reason string) {
	s.decision, s.reason, s.decidedAt = d, reason, s.n
}

// Reset clears the counts and decision, keeping the design, so that one design (which
// costs milliseconds) serves many runs.
func (s *Sequential) Reset() {
	for i := range s.counts {
		s.counts[i] = 0
	}
	s.n, s.late, s.decision, s.reason, s.decidedAt = 0, 0, "", "", 0
	s.undeclared = map[string]int{}
	for _, sd := range s.sides {
		sd.state, sd.at = running, 0
	}
}

// Done reports whether the test has decided.
func (s *Sequential) Done() bool { return s.decision != "" }

// N returns the number of responses counted so far.
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
		s.decide(Fail, reason)
	}
}

// Finish ends the stream of responses. A test without share tests (only zero-weight and
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
	s.decide(Inconclusive, fmt.Sprintf("the responses ran out before the test decided (cap %s)", commas(s.cfg.MaxRequests)))
}

// Verdict summarises the test so far (an undecided test reports Inconclusive).
func (s *Sequential) Verdict() Verdict {
	v := Verdict{
		Decision:    s.decision,
		Method:      method,
		N:           s.n,
		Late:        s.late,
		MaxRequests: s.cfg.MaxRequests,
		Alpha:       s.cfg.Alpha,
		TargetPower: s.cfg.Power,
		Tolerance:   s.cfg.Tolerance,
		Delta:       s.cfg.Delta,
		Power:       1,
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
			Boundary:         sd.design.Line,
			Alpha:            sd.alpha,
			ExactAlpha:       sd.oc0.Fail,
			Power:            sd.oc1.Fail,
			ExpectedNCorrect: sd.oc0.ASN,
			ExpectedNSkewed:  sd.oc1.ASN,
			FailAt:           sd.design.FailAt,
			AcceptAt:         sd.design.AcceptAt,
			TerminalAt:       sd.design.TerminalAt,
			State:            sd.state.String(),
			DecidedAt:        sd.at,
		}
		if !sd.upper {
			st.Direction = "below"
			st.Boundary = 1 - sd.design.Line
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
	}
	if v.Power < s.cfg.Power && len(s.sides) > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf(
			"power against a %.1f-pt skew is %.3f at a cap of %d requests, below the wanted %.2f; raise the cap (a fixed-sample test reaches it at about %d requests, this sequential one somewhat above that)",
			100*s.cfg.Delta, v.Power, s.cfg.MaxRequests, s.cfg.Power, s.requestsForPower()))
	}
	v.Message = s.message(v)
	return v
}

// requestsForPower estimates, with the fixed-sample normal formula, the requests a test of
// the worst share needs to reach the wanted power; it is advice, not part of the test.
func (s *Sequential) requestsForPower() int {
	worst := 0.0
	for _, sd := range s.sides {
		p0, p1 := sd.design.P0, sd.design.P1
		za := normalQuantile(1 - sd.alpha)
		zb := normalQuantile(s.cfg.Power)
		n := math.Pow((za*math.Sqrt(p0*(1-p0))+zb*math.Sqrt(p1*(1-p1)))/(p1-p0), 2)
		worst = math.Max(worst, n)
	}
	return int(math.Ceil(worst/100) * 100)
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

func (s *Sequential) message(v Verdict) string {
	var parts []string
	for i, br := range v.Backends {
		b := s.backends[i]
		switch {
		case s.shares[i] == 0 && br.Count > 0:
			parts = append(parts, fmt.Sprintf("backend %s: weight 0 but served %s of %s responses", b.Name, commas(br.Count), commas(v.N)))
		case !br.Pass:
			parts = append(parts, fmt.Sprintf("backend %s: declared %.1f%%, observed %.1f%% (%s CI %.1f–%.1f%%, n=%s): outside tolerance ±%.1f pts",
				b.Name, 100*br.Declared, 100*br.Observed, levelString(br.Interval.Level), 100*br.Interval.Lo, 100*br.Interval.Hi,
				commas(v.N), 100*s.cfg.Tolerance))
		}
	}
	names := make([]string, 0, len(v.Undeclared))
	for k := range v.Undeclared {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("backend %q is not declared but served %s responses", k, commas(v.Undeclared[k])))
	}
	if s.reason != "" {
		parts = append(parts, s.reason)
	}
	switch v.Decision {
	case Pass:
		if len(s.sides) == 0 {
			return fmt.Sprintf("no response from a zero-weight or undeclared backend in n=%s (a leak rate above %.2g%% would show with probability %.4f)",
				commas(v.N), 100*leakBound(v.N, s.cfg.Power), s.cfg.Power)
		}
		return fmt.Sprintf("all %d backends within ±%.1f pts of their declared shares (n=%s; false-failure <= %.2g, power %.3f against a %.1f-pt skew)",
			len(v.Backends), 100*s.cfg.Tolerance, commas(v.N), v.AchievedAlpha, v.Power, 100*s.cfg.Delta)
	case Fail:
		return strings.Join(parts, "; ")
	default:
		if len(parts) == 0 {
			return fmt.Sprintf("undecided after n=%s", commas(v.N))
		}
		return fmt.Sprintf("undecided after n=%s: %s", commas(v.N), strings.Join(parts, "; "))
	}
}

// leakBound is the smallest leak rate that n clean responses rule out with probability
// power: (1-r)^n = 1-power.
func leakBound(n int, power float64) float64 {
	if n == 0 {
		return 1
	}
	return 1 - math.Pow(1-power, 1/float64(n))
}
