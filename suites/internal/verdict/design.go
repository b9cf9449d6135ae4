package verdict

import (
	"fmt"
	"math"
)

// sideDesign is one one-sided sequential test, always expressed as "is the share too HIGH":
// a lower-side test on share p is run as an upper-side test on the complement 1-p with
// count n-k. The test follows the random walk S(n) = k - n*line, where line = p0 + tolerance:
// it fails once S >= failAt, accepts once S <= -acceptAt, and at the request cap fails iff
// S > terminalAt. This is Wald's SPRT of p0 against p1 = p0 + delta with the drift line moved
// to the tolerance (the SPRT's own line lies within a few hundredths of a point of
// p0 + delta/2), so "fail" always means the observed share is past the tolerance.
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
// and the exact error computation (operate), so the computed error rates are those of the
// rule actually run.
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

// operating is the exact operating characteristic of the design when the true share is p.
type operating struct {
	Fail float64 // probability the side ever fails
	ASN  float64 // expected number of requests until the side is decided
}

// operate computes the operating characteristic exactly by propagating the distribution of
// k over the continuation region one request at a time. The region is a band about
// FailAt+AcceptAt counts wide, so this costs O(cap * width), a few hundred thousand steps.
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

// designSide builds the upper-side test of share p0, calibrated so that its exact
// false-failure probability at p0 is at most alpha and, where the cap allows, its exact power
// at p0+delta is at least 1-beta. ok is false when a skew of delta upwards is impossible
// (p0+delta >= 1).
func designSide(p0, tol, delta, alpha, beta float64, capN int) (d sideDesign, oc0, oc1 operating, ok bool) {
	if p0 <= 0 || p0+delta >= 1 {
		return d, oc0, oc1, false
	}
	// Wald's boundaries assume no cap; the cap and the discreteness of counts cost power, so
	// ask the boundaries for a smaller beta until the exact power meets the target. Each
	// halving moves the accept boundary by ln2/c counts and costs requests, not alpha.
	// When the cap makes the target unreachable (a 3-point skew at 50/50 needs ~10,700
	// requests), stop as soon as halving no longer buys power: it would only delay passes.
	d, oc0, oc1 = calibrateSide(p0, tol, delta, alpha, beta, capN)
	for b := beta / 2; oc1.Fail < 1-beta && b > beta/4096; b /= 2 {
		d2, oc02, oc12 := calibrateSide(p0, tol, delta, alpha, b, capN)
		if oc12.Fail-oc1.Fail < 0.002 {
			break
		}
		d, oc0, oc1 = d2, oc02, oc12
	}
	d.freeze()
	return d, oc0, oc1, true
}

// calibrateSide sets Wald's boundaries for (alpha, beta) and then moves the terminal and, if
// needed, the fail boundary outwards until the exact false-failure probability is <= alpha.
func calibrateSide(p0, tol, delta, alpha, beta float64, capN int) (d sideDesign, oc0, oc1 operating) {
	p1 := p0 + delta
	// Log-likelihood ratio per unit of S; Wald's boundaries are log-ratios of error targets.
	c := math.Log(p1/p0) - math.Log((1-p1)/(1-p0))
	d = sideDesign{
		P0: p0, P1: p1, Line: p0 + tol,
		FailAt:   math.Log((1-beta)/alpha) / c,
		AcceptAt: math.Log((1-alpha)/beta) / c,
		Cap:      capN,
	}
	oc0 = d.operate(p0)
	if oc0.Fail > alpha {
		d.TerminalAt = bisect(0, d.FailAt, func(x float64) bool {
			d2 := d
			d2.TerminalAt = x
			return d2.operate(p0).Fail <= alpha
		})
		if d.operate(p0).Fail > alpha {
			a := bisect(d.FailAt, 4*d.FailAt, func(x float64) bool {
				d3 := d
				d3.FailAt, d3.TerminalAt = x, x
				return d3.operate(p0).Fail <= alpha
			})
			d.FailAt, d.TerminalAt = a, a
		}
		oc0 = d.operate(p0)
	}
	oc1 = d.operate(p1)
	return d, oc0, oc1
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
