package verdict

import (
	"fmt"
	"math"
	"sync"
)

// sideDesign is one one-sided sequential test, always expressed as "is the share too HIGH":
// a lower-side test on share p is run as an upper-side test on the complement 1-p with
// count n-k. The test follows the random walk S(n) = k - n*Line, where Line is the drift line
// of Wald's SPRT of p0 against p1 (the share at which the walk is level on average): it fails
// once S >= FailAt, accepts once S <= -AcceptAt, and at its cap fails iff S > TerminalAt.
type sideDesign struct {
	P0         float64 `json:"p0"`
	P1         float64 `json:"p1"`
	Line       float64 `json:"line"`
	FailAt     float64 `json:"failAt"`
	AcceptAt   float64 `json:"acceptAt"`
	TerminalAt float64 `json:"terminalAt"`
	Cap        int     `json:"cap"`

	// acceptMaxAt and failMinAt cache bounds(n) for n <= Cap once the design is final, so
	// the live test costs two lookups per response.
	acceptMaxAt, failMinAt []int
}

// freeze caches the bounds of the final design.
func (d *sideDesign) freeze() {
	acc, fail := make([]int, d.Cap+1), make([]int, d.Cap+1)
	for n := 0; n <= d.Cap; n++ {
		acc[n], fail[n] = d.bounds(n)
	}
	d.acceptMaxAt, d.failMinAt = acc, fail
}

type outcome int

const (
	running outcome = iota
	accepted
	failed
)

// bounds gives, for request n, the largest count that accepts and the smallest that fails.
// It is the single place that decides a side's state, shared by the live test (classify)
// and the exact error computations (operate, ocRule), so the computed error rates are those
// of the rule actually run.
func (d sideDesign) bounds(n int) (acceptMax, failMin int) {
	if d.failMinAt != nil && n <= d.Cap {
		return d.acceptMaxAt[n], d.failMinAt[n]
	}
	const eps = 1e-9
	c := float64(n) * d.Line
	if n >= d.Cap {
		// At the cap: fail iff k - n*line > TerminalAt, accept otherwise.
		failMin = int(math.Floor(c+d.TerminalAt+eps)) + 1
		return failMin - 1, failMin
	}
	return int(math.Floor(c - d.AcceptAt + eps)), int(math.Ceil(c + d.FailAt - eps))
}

func (d sideDesign) classify(n, k int) outcome {
	acceptMax, failMin := d.bounds(n)
	switch {
	case k >= failMin:
		return failed
	case k <= acceptMax:
		return accepted
	}
	return running
}

// operating is the exact operating characteristic of a rule when the true share is p.
type operating struct {
	Fail float64 // probability the rule ever fails
	ASN  float64 // expected number of responses until it is decided
}

// operate computes one side's operating characteristic exactly by propagating the
// distribution of k over the continuation region one response at a time. The region is a
// band about FailAt+AcceptAt counts wide, so this costs O(cap * width).
func (d sideDesign) operate(p float64) operating {
	var oc operating
	cur := make([]float64, d.Cap+2)
	cur[0] = 1
	lo, hi := 0, 0 // cur[k] may be non-zero only for lo <= k <= hi
	q := 1 - p
	for n := 1; n <= d.Cap && lo <= hi; n++ {
		cur[hi+1] = 0
		for k := hi + 1; k > lo; k-- {
			cur[k] = cur[k]*q + cur[k-1]*p
		}
		cur[lo] *= q
		hi++
		acceptMax, failMin := d.bounds(n)
		for ; hi >= lo && hi >= failMin; hi-- {
			oc.Fail += cur[hi]
			oc.ASN += float64(n) * cur[hi]
			cur[hi] = 0
		}
		for ; lo <= hi && lo <= acceptMax; lo++ {
			oc.ASN += float64(n) * cur[lo]
			cur[lo] = 0
		}
	}
	return oc
}

// fixedSampleSize is the normal-approximation n of a one-sided fixed-sample test of p0
// against p1 with errors alpha and beta: the yardstick the sequential design is sized from.
func fixedSampleSize(p0, p1, alpha, beta float64) int {
	za, zb := normalQuantile(1-alpha), normalQuantile(1-beta)
	n := math.Pow((za*math.Sqrt(p0*(1-p0))+zb*math.Sqrt(p1*(1-p1)))/(p1-p0), 2)
	return int(math.Ceil(n))
}

// designKey identifies a side design; designs are pure functions of it, so they are cached
// for the life of the process (a suite run designs the same few splits many times).
type designKey struct {
	p0, p1, alpha, beta float64
}

type designed struct {
	d        sideDesign
	oc0, oc1 operating
}

var designCache sync.Map // designKey -> designed

// designSide builds the upper-side test of share p0 against p1 > p0, calibrated on exact
// error rates: its false-failure probability at p0 is at most alpha, and its power at p1 is
// at least 1-beta. The cap (the most responses the side can use) is not given: it is the
// smallest found (to about 2%) that reaches the power, so the test draws as many responses
// as the power needs and no more. ok is false when p1 >= 1.
func designSide(p0, p1, alpha, beta float64) (d sideDesign, oc0, oc1 operating, ok bool) {
	if !(p0 > 0 && p1 > p0 && p1 < 1) {
		return d, oc0, oc1, false
	}
	key := designKey{p0, p1, alpha, beta}
	if v, hit := designCache.Load(key); hit {
		r := v.(designed)
		return r.d, r.oc0, r.oc1, true
	}
	// Wald's boundaries for (alpha, beta/2): untruncated they give about half the wanted
	// miss rate, and the truncation at the cap spends the other half. Measured on the
	// splits of the suites (10%, 20%, 25%, 30%, 50%, 1%, 3% against a 3-pt or relative
	// skew), beta/2 gives caps 15-25% lower than beta (whose truncation must come late to
	// keep the power) for 10-15% more expected responses at p0; beta/4 saves another 2-5%
	// of the cap for 10% more expected responses.
	wb := beta / 2
	fixed := fixedSampleSize(p0, p1, alpha, beta)
	try := func(capN int) designed {
		d, oc0, oc1 := calibrateSide(p0, p1, alpha, wb, capN)
		return designed{d, oc0, oc1}
	}
	// Grow the cap geometrically until the power holds, then bisect between the last two.
	lo := fixed / 2
	hiCap := fixed
	best := try(hiCap)
	for best.oc1.Fail < 1-beta {
		lo = hiCap
		hiCap = int(float64(hiCap) * 1.25)
		best = try(hiCap)
		if hiCap > 64*fixed {
			break // cannot happen with Wald's boundaries; keeps a bad input from looping
		}
	}
	for hiCap-lo > max(20, hiCap/50) {
		mid := (lo + hiCap) / 2
		if r := try(mid); r.oc1.Fail >= 1-beta {
			hiCap, best = mid, r
		} else {
			lo = mid
		}
	}
	best.d.freeze()
	designCache.Store(key, best)
	return best.d, best.oc0, best.oc1, true
}

// calibrateSide sets Wald's boundaries for (alpha, beta) and the SPRT's drift line, then
// moves the terminal and, if needed, the fail boundary outwards until the exact
// false-failure probability at p0 is <= alpha.
func calibrateSide(p0, p1, alpha, beta float64, capN int) (d sideDesign, oc0, oc1 operating) {
	// Log-likelihood ratio per unit of S; Wald's boundaries are log-ratios of error targets.
	c := math.Log(p1/p0) - math.Log((1-p1)/(1-p0))
	d = sideDesign{
		P0: p0, P1: p1, Line: math.Log((1-p0)/(1-p1)) / c,
		FailAt:   math.Log((1-beta)/alpha) / c,
		AcceptAt: math.Log((1-alpha)/beta) / c,
		Cap:      capN,
	}
	// The terminal boundary only acts at the cap, so one pass to the cap gives the failures
	// before it and the distribution of k at it, from which the smallest terminal threshold
	// (not below the drift line) that keeps the total within alpha is read off directly.
	before, atCap := d.operateBeforeCap(p0)
	line := float64(capN) * d.Line
	minFail := int(math.Floor(line+1e-9)) + 1 // TerminalAt = 0
	maxFail := int(math.Ceil(line + d.FailAt - 1e-9))
	tail := 0.0
	for k := len(atCap) - 1; k >= minFail; k-- {
		tail += atCap[k]
	}
	failMin := minFail
	for failMin <= maxFail && before+tail > alpha {
		if failMin < len(atCap) {
			tail -= atCap[failMin]
		}
		failMin++
	}
	if before+tail <= alpha {
		if failMin > minFail {
			// bounds(cap) fails from floor(line + TerminalAt + eps) + 1.
			d.TerminalAt = float64(failMin-1) - line + 1e-6
		}
	} else {
		// Even failing only past the fail boundary at the cap is too often: move the fail
		// boundary out (rare: tiny caps).
		a := bisect(d.FailAt, 4*d.FailAt, func(x float64) bool {
			d3 := d
			d3.FailAt, d3.TerminalAt = x, x
			return d3.operate(p0).Fail <= alpha
		})
		d.FailAt, d.TerminalAt = a, a
	}
	oc0 = d.operate(p0)
	oc1 = d.operate(p1)
	return d, oc0, oc1
}

// operateBeforeCap runs the exact recursion up to the cap and returns the probability of
// failing before it and the probability of each count k at the cap among the paths still
// running there.
func (d sideDesign) operateBeforeCap(p float64) (failBefore float64, atCap []float64) {
	cur := make([]float64, d.Cap+2)
	cur[0] = 1
	lo, hi := 0, 0
	q := 1 - p
	for n := 1; n <= d.Cap && lo <= hi; n++ {
		cur[hi+1] = 0
		for k := hi + 1; k > lo; k-- {
			cur[k] = cur[k]*q + cur[k-1]*p
		}
		cur[lo] *= q
		hi++
		if n == d.Cap {
			break
		}
		acceptMax, failMin := d.bounds(n)
		for ; hi >= lo && hi >= failMin; hi-- {
			failBefore += cur[hi]
			cur[hi] = 0
		}
		for ; lo <= hi && lo <= acceptMax; lo++ {
			cur[lo] = 0
		}
	}
	if lo > hi {
		return failBefore, nil
	}
	return failBefore, cur[:hi+1]
}

// bisect returns the smallest x in [lo, hi] (to 0.01 counts) with good(x), assuming good is
// monotone; hi is returned when no smaller value is good.
func bisect(lo, hi float64, good func(float64) bool) float64 {
	if good(lo) {
		return lo
	}
	for hi-lo > 1e-2 {
		mid := (lo + hi) / 2
		if good(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

func (d sideDesign) String() string {
	return fmt.Sprintf("p0=%.4f p1=%.4f line=%.4f fail>=%.2f accept<=-%.2f terminal>%.2f cap=%d",
		d.P0, d.P1, d.Line, d.FailAt, d.AcceptAt, d.TerminalAt, d.Cap)
}
