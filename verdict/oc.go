package verdict

import (
	"math"
	"sort"
	"sync"
)

// ruleSide is one side of a share rule as it watches a backend's count k: an upper side
// counts k, a lower side (complement) counts n-k.
type ruleSide struct {
	d          *sideDesign
	complement bool
}

// ocRule computes exactly the operating characteristic of the rule made of sides that all
// watch one count k ~ Binomial(n, p), as the live test runs them: the rule fails as soon
// as a running side fails, a side that has accepted stays accepted, and the rule ends when
// every side has accepted. With two positive backends this is the whole share test (one
// count fixes the other); in a wider split it is one backend's part of it.
//
// It propagates, one response at a time, the distribution of k for each set of sides still
// running (a bit mask): O(cap * band width * 2^sides) for at most two sides.
func ocRule(sides []ruleSide, p float64) operating {
	var oc operating
	if len(sides) == 0 {
		return oc
	}
	capN := 0
	for _, s := range sides {
		capN = max(capN, s.d.Cap)
	}
	masks := 1 << len(sides)
	cur := make([][]float64, masks)
	lo := make([]int, masks)
	hi := make([]int, masks)
	for m := range cur {
		cur[m] = make([]float64, capN+2)
		lo[m], hi[m] = 0, -1
	}
	all := masks - 1
	accMax := make([]int, len(sides))
	failMin := make([]int, len(sides))
	cur[all][0] = 1
	lo[all], hi[all] = 0, 0
	q := 1 - p
	for n := 1; n <= capN; n++ {
		live := false
		// Step every running set one response forward.
		for m := 1; m < masks; m++ {
			if lo[m] > hi[m] {
				continue
			}
			live = true
			c := cur[m]
			c[hi[m]+1] = 0
			for k := hi[m] + 1; k > lo[m]; k-- {
				c[k] = c[k]*q + c[k-1]*p
			}
			c[lo[m]] *= q
			hi[m]++
		}
		if !live {
			break
		}
		for i, s := range sides {
			if n <= s.d.Cap {
				accMax[i], failMin[i] = s.d.bounds(n)
			}
		}
		// Classify from the largest set down: mass whose sides partly accept moves to a
		// smaller set, where it is classified again at the same n (its remaining sides were
		// running, so it stays there).
		for m := all; m >= 1; m-- {
			if lo[m] > hi[m] {
				continue
			}
			c := cur[m]
			newLo, newHi := math.MaxInt, -1
			for k := lo[m]; k <= hi[m]; k++ {
				w := c[k]
				if w == 0 {
					continue
				}
				rest := m
				fail := false
				for i, s := range sides {
					if m&(1<<i) == 0 {
						continue
					}
					ks := k
					if s.complement {
						ks = n - k
					}
					switch {
					case ks >= failMin[i]:
						fail = true
					case ks <= accMax[i]:
						rest &^= 1 << i
					}
				}
				switch {
				case fail:
					oc.Fail += w
					oc.ASN += float64(n) * w
					c[k] = 0
				case rest == 0:
					oc.ASN += float64(n) * w
					c[k] = 0
				case rest != m:
					c[k] = 0
					cur[rest][k] += w
					if lo[rest] > hi[rest] {
						lo[rest], hi[rest] = k, k
					} else {
						lo[rest], hi[rest] = min(lo[rest], k), max(hi[rest], k)
					}
				default:
					newLo, newHi = min(newLo, k), max(newHi, k)
				}
			}
			if newHi < 0 {
				lo[m], hi[m] = 0, -1
			} else {
				lo[m], hi[m] = newLo, newHi
			}
		}
	}
	return oc
}

// OCPoint is the operating characteristic at one true share: the exact probability that the
// rule fails, and the expected number of units it uses.
type OCPoint struct {
	Share     float64 `json:"share"`
	Fail      float64 `json:"fail"`
	ExpectedN float64 `json:"expectedN"`
}

// OCMark is a labelled point of the curve: "declared" (the false-failure rate), "skew down"
// and "skew up" (the power against the designed skews), "nothing" (the backend starved) and
// "double" (flooded to twice its share).
type OCMark struct {
	Label string `json:"label"`
	OCPoint
}

// OCCurve is the probability that a verdict fails as a function of one backend's true share,
// computed exactly from the rule the live test runs. Exact is true when the curve is the
// whole verdict's (two positive backends); otherwise it is this backend's part of the test,
// whose failure fails the verdict, so the verdict fails at least this often.
type OCCurve struct {
	Backend  string    `json:"backend"`
	Declared float64   `json:"declared"`
	Exact    bool      `json:"exact"`
	Points   []OCPoint `json:"points"`
	Marks    []OCMark  `json:"marks"`
}

// At returns the mark with the label, and whether there is one.
func (c OCCurve) At(label string) (OCMark, bool) {
	for _, m := range c.Marks {
		if m.Label == label {
			return m, true
		}
	}
	return OCMark{}, false
}

// ocPoints is how many evenly spaced shares a curve has besides its marks: enough to draw
// it smoothly, few enough that a 50/50 curve costs well under a second.
const ocPoints = 21

type ocKey struct {
	p0, up, down, alpha, beta float64
}

var ocCache sync.Map // ocKey -> OCCurve (without Backend/Exact)

// curveFor computes a backend's curve for its sides. The declared share is p0; up and down
// are the designed skews (0 when that side is not tested).
func curveFor(sides []ruleSide, p0, up, down float64, key ocKey) OCCurve {
	if v, ok := ocCache.Load(key); ok {
		return v.(OCCurve)
	}
	c := OCCurve{Declared: p0}
	span := 2.5 * math.Max(up, down)
	lo, hi := math.Max(0, p0-span), math.Min(1, p0+span)
	mark := func(label string, s float64) {
		oc := ocRule(sides, s)
		c.Marks = append(c.Marks, OCMark{label, OCPoint{s, oc.Fail, oc.ASN}})
	}
	mark("declared", p0)
	if down > 0 {
		mark("skew down", p0-down)
	}
	if up > 0 {
		mark("skew up", p0+up)
	}
	mark("nothing", 0)
	if 2*p0 < 1 {
		mark("double", 2*p0)
	}
	for i := 0; i < ocPoints; i++ {
		s := lo + (hi-lo)*float64(i)/float64(ocPoints-1)
		oc := ocRule(sides, s)
		c.Points = append(c.Points, OCPoint{s, oc.Fail, oc.ASN})
	}
	for _, m := range c.Marks {
		if m.Share >= lo && m.Share <= hi {
			c.Points = append(c.Points, m.OCPoint)
		}
	}
	sort.Slice(c.Points, func(i, j int) bool { return c.Points[i].Share < c.Points[j].Share })
	ocCache.Store(key, c)
	return c
}
