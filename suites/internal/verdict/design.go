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
}

type outcome int

const (
	running outcome = iota
	accepted
	failed
)

// classify is the single place that decides a side's state, shared by the live test and the
// exact error computation, so the computed error rates are those of the rule actually run.
func (d sideDesign) classify(n, k int) outcome {
	s := float64(k) - float64(n)*d.Line
	const eps = 1e-9
	if n >= d.Cap {
		if s > d.TerminalAt+eps {
			return failed
		}
		return accepted
	}
	if s >= d.FailAt-eps {
		return failed
	}
	if s <= -d.AcceptAt+eps {
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
	lo, hi := 0, 0
	for n := 1; n <= d.Cap; n++ {
		for k := hi + 1; k >= lo; k-- {
			v := cur[k] * (1 - p)
			if k-1 >= lo {
				v += cur[k-1] * p
			}
			cur[k] = v
		}
		hi++
		for k := lo; k <= hi; k++ {
			if cur[k] == 0 {
				continue
			}
			switch d.classify(n, k) {
			case failed:
				oc.Fail += cur[k]
				oc.ASN += float64(n) * cur[k]
				cur[k] = 0
			case accepted:
				oc.ASN += float64(n) * cur[k]
				cur[k] = 0
			}
		}
		for lo <= hi && cur[lo] == 0 {
			lo++
		}
		for hi >= lo && cur[hi] == 0 {
			hi--
		}
		if lo > hi {
			break
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
