package verdict

import (
	"fmt"
	"math"
	"sort"
)

// DefaultDependenceAlpha is the false-detection budget of the dependence tests, taken out of
// the verdict's Alpha (so the verdict's total stays within it).
const DefaultDependenceAlpha = 1e-6

// Dependence is the evidence on whether units were split independently, which the share test
// assumes. Two exact runs tests look for clustering of each tested backend's responses: in
// send order (responses served in runs) and grouped by connection (a split per connection
// behind keep-alive). Under independence, given the counts every order of the responses is
// equally likely, so the number of runs has the exact Wald-Wolfowitz distribution; too few
// runs is clustering.
type Dependence struct {
	// Detected is true when some test's p-value is below its share of Alpha.
	Detected bool `json:"detected"`
	// Finding says what was found, e.g. "split per connection, not per request".
	Finding string `json:"finding,omitempty"`
	// Alpha is the budget of all the tests together (Bonferroni).
	Alpha float64    `json:"alpha"`
	Tests []RunsTest `json:"tests"`
	// Connections is how many distinct connections carried the units (0 when not recorded);
	// SingleBackend how many of those with 10 or more units were served by one backend only.
	Connections   int `json:"connections,omitempty"`
	SingleBackend int `json:"singleBackend,omitempty"`
}

// RunsTest is one exact runs test of a backend's responses against the rest.
type RunsTest struct {
	Backend string `json:"backend"`
	// Order is "send order" or "connection order" (each connection's units in turn).
	Order string `json:"order"`
	Count int    `json:"count"`
	N     int    `json:"n"`
	// Runs is the number of maximal blocks of this backend's responses; Expected its mean
	// under independence.
	Runs     int     `json:"runs"`
	Expected float64 `json:"expected"`
	// PValue is the exact probability of so few runs under independence; Level what it is
	// compared with.
	PValue float64 `json:"pValue"`
	Level  float64 `json:"level"`
}

// runsLowerTail is P(R <= r) for the number R of runs of n1 ones among n0 zeros arranged
// uniformly at random: P(R = j) = C(n1-1, j-1) C(n0+1, j) / C(n0+n1, n1).
func runsLowerTail(r, n1, n0 int) float64 {
	if n1 == 0 || r >= min(n1, n0+1) {
		return 1
	}
	lc := func(n, k int) float64 {
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(k + 1))
		c, _ := math.Lgamma(float64(n - k + 1))
		return a - b - c
	}
	total := lc(n0+n1, n1)
	p := 0.0
	for j := 1; j <= r; j++ {
		p += math.Exp(lc(n1-1, j-1) + lc(n0+1, j) - total)
	}
	return math.Min(1, p)
}

// runsOf counts the maximal blocks of value b in seq.
func runsOf(seq []int32, b int32) int {
	runs := 0
	for i, x := range seq {
		if x == b && (i == 0 || seq[i-1] != b) {
			runs++
		}
	}
	return runs
}

// minDependenceN is the fewest units the dependence tests look at. The tests are exact at
// any n; below this they have no power worth the computation.
const minDependenceN = 10

// dependence runs the tests on the units in send order (backend index per unit) and their
// connection (group index per unit; all equal when not recorded), for the tested backends.
func dependence(hist, groups []int32, tested []int, names []string, alpha float64, unit string) *Dependence {
	n := len(hist)
	dep := &Dependence{Alpha: alpha}
	nGroups := 0
	for _, g := range groups {
		nGroups = max(nGroups, int(g)+1)
	}
	if nGroups > 1 {
		dep.Connections = nGroups
	}
	if n < minDependenceN || len(tested) == 0 {
		return dep
	}
	// Group order: connections by first use, each connection's units in send order.
	var byGroup []int32
	if nGroups > 1 && nGroups <= n/3 {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return groups[idx[a]] < groups[idx[b]] })
		byGroup = make([]int32, n)
		for i, j := range idx {
			byGroup[i] = hist[j]
		}
		per := make([]map[int32]int, nGroups)
		for i, g := range groups {
			if per[g] == nil {
				per[g] = map[int32]int{}
			}
			per[g][hist[i]]++
		}
		for _, m := range per {
			total := 0
			for _, c := range m {
				total += c
			}
			if total >= 10 && len(m) == 1 {
				dep.SingleBackend++
			}
		}
	}
	orders := []struct {
		name string
		seq  []int32
	}{{"send order", hist}}
	if byGroup != nil {
		orders = append(orders, struct {
			name string
			seq  []int32
		}{"connection order", byGroup})
	}
	level := alpha / float64(len(orders)*len(tested))
	var worst *RunsTest
	for _, o := range orders {
		for _, b := range tested {
			count := 0
			for _, x := range hist {
				if int(x) == b {
					count++
				}
			}
			if count < 2 || count == n {
				continue
			}
			r := runsOf(o.seq, int32(b))
			t := RunsTest{
				Backend: names[b], Order: o.name, Count: count, N: n, Runs: r,
				Expected: float64(count) * float64(n-count+1) / float64(n),
				PValue:   runsLowerTail(r, count, n-count),
				Level:    level,
			}
			dep.Tests = append(dep.Tests, t)
			if t.PValue < level {
				dep.Detected = true
				// The order with the stronger evidence says what kind of dependence it is: a
				// split per connection clusters far more in connection order than in send
				// order, runs in time the other way round.
				if worst == nil || t.PValue < worst.PValue {
					tt := t
					worst = &tt
				}
			}
		}
	}
	if worst != nil {
		runs := "runs"
		if worst.Runs == 1 {
			runs = "run"
		}
		p := fmt.Sprintf("= %.2g", worst.PValue)
		if worst.PValue < 1e-300 {
			p = "< 1e-300"
		}
		evidence := fmt.Sprintf("%s's %s %ss form %s %s in %s where independent %ss would form %.0f on average (exact p %s, level %.2g)",
			worst.Backend, commas(worst.Count), unit, commas(worst.Runs), runs, worst.Order, unit, worst.Expected, p, worst.Level)
		if worst.Order == "connection order" {
			dep.Finding = fmt.Sprintf("split per connection, not per %s: %s", unit, evidence)
			if dep.SingleBackend > 0 {
				dep.Finding += fmt.Sprintf("; %d of %d connections were served by one backend only", dep.SingleBackend, dep.Connections)
			}
		} else {
			dep.Finding = fmt.Sprintf("served in runs from one backend, not split per %s independently: %s", unit, evidence)
		}
	}
	return dep
}
