package verdict

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is a two-sided confidence interval for a proportion.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Level is the confidence level, e.g. 0.9999.
	Level float64 `json:"level"`
	// Method is "clopper-pearson" or "wilson".
	Method string `json:"method"`
}

// ClopperPearson returns the exact (conservative) binomial interval for k successes in n
// trials at confidence level 1-alpha. It is the reported interval because its coverage never
// falls below the level, which matters at the tiny shares (99/1 splits) where Wilson's does.
func ClopperPearson(k, n int, alpha float64) Interval {
	iv := Interval{Lo: 0, Hi: 1, Level: 1 - alpha, Method: "clopper-pearson"}
	if n <= 0 || k < 0 || k > n {
		return iv
	}
	if k > 0 {
		iv.Lo = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(alpha / 2)
	}
	if k < n {
		iv.Hi = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(1 - alpha/2)
	}
	return iv
}

// Wilson returns the Wilson score interval for k successes in n trials at level 1-alpha.
func Wilson(k, n int, alpha float64) Interval {
	iv := Interval{Lo: 0, Hi: 1, Level: 1 - alpha, Method: "wilson"}
	if n <= 0 || k < 0 || k > n {
		return iv
	}
	z := distuv.UnitNormal.Quantile(1 - alpha/2)
	nf := float64(n)
	p := float64(k) / nf
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	iv.Lo = math.Max(0, center-half)
	iv.Hi = math.Min(1, center+half)
	return iv
}

// ChiSquareGOF returns Pearson's goodness-of-fit statistic, its degrees of freedom and the
// p-value for observed counts against expected shares (which must be positive and sum to 1).
// It is reported, not used for the decision: it answers "is anything off at all", while the
// decision asks "is anything off by more than the tolerance".
func ChiSquareGOF(counts []int, shares []float64) (stat float64, df int, p float64) {
	n := 0
	for _, c := range counts {
		n += c
	}
	if n == 0 || len(counts) < 2 {
		return 0, 0, 1
	}
	for i, c := range counts {
		e := float64(n) * shares[i]
		d := float64(c) - e
		stat += d * d / e
	}
	df = len(counts) - 1
	return stat, df, distuv.ChiSquared{K: float64(df)}.Survival(stat)
}
