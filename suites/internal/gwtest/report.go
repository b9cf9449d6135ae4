package gwtest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/verdict"
)

// VerdictEntryName names the report entry carrying a verdict's full JSON (design and
// one-sided tests included), beside the typed measurement.
const VerdictEntryName = "gatecheck.verdict"

// WeightMeasurement converts a share verdict into the report model.
func WeightMeasurement(v verdict.Verdict) *model.WeightVerdict {
	w := &model.WeightVerdict{
		N:         v.N,
		Tolerance: v.Tolerance,
		Alpha:     v.Alpha,
		Power:     v.Power,
		PValue:    v.PValue,
		Method:    v.Method,
		Decision:  model.Decision(v.Decision),
		Message:   Explain(v),

		Hypotheses:    v.Hypotheses,
		Unit:          v.Unit,
		Delta:         v.Delta,
		AchievedAlpha: v.AchievedAlpha,
		ExpectedN:     v.ExpectedN,
		MaxN:          v.NeededN,
	}
	if d := v.Dependence; d != nil && d.Detected {
		w.Dependence = d.Finding
	}
	for _, c := range v.OC {
		oc := model.OperatingCurve{Backend: c.Backend, DeclaredShare: c.Declared, Exact: c.Exact}
		for _, p := range c.Points {
			oc.Points = append(oc.Points, model.OCPoint{Share: p.Share, Fail: p.Fail, ExpectedN: p.ExpectedN})
		}
		for _, m := range c.Marks {
			oc.Marks = append(oc.Marks, model.OCPoint{Label: m.Label, Share: m.Share, Fail: m.Fail, ExpectedN: m.ExpectedN})
		}
		w.OC = append(w.OC, oc)
	}
	for _, b := range v.Backends {
		w.Backends = append(w.Backends, model.WeightShare{
			Backend:       b.Name,
			Weight:        int32(math.Round(b.Weight)),
			DeclaredShare: b.Declared,
			Count:         b.Count,
			Share:         b.Observed,
			Lo:            b.Interval.Lo,
			Hi:            b.Interval.Hi,
		})
	}
	return w
}

// Explain says, for a person, what a verdict decided and on what evidence: what was tested,
// n and the unit, each share with its interval, the false-failure rate and the power, the
// exact probability of failing at the labelled shares, and the dependence tests.
func Explain(v verdict.Verdict) string {
	var b strings.Builder
	unit := v.Unit
	if unit == "" {
		unit = "request"
	}
	fmt.Fprintf(&b, "%s: %s\n", strings.ToUpper(string(v.Decision)), v.Message)
	if len(v.Tests) == 0 {
		// One positive share: nothing to estimate, only responses from zero-weight or
		// undeclared backends can fail it, and a correct implementation never sends one.
		fmt.Fprintf(&b, "  n=%d %ss (cap %d); no share to test (one positive backend): only a %s to a zero-weight or undeclared backend fails, so the false-failure rate is 0\n",
			v.N, unit, v.MaxRequests, unit)
	} else {
		fmt.Fprintf(&b, "  n=%d %ss (expected %.0f for a correct split, at most %d); false-failure rate <= %.2g (target alpha %.2g); power %.4f against the designed skews (%.1f pts, relative below); chi-square p=%.3g\n",
			v.N, unit, v.ExpectedN, v.NeededN, v.AchievedAlpha, v.Alpha, v.Power, 100*v.Delta, v.PValue)
	}
	if v.Hypotheses != "" {
		fmt.Fprintf(&b, "  tested: %s\n", v.Hypotheses)
	}
	for _, br := range v.Backends {
		fmt.Fprintf(&b, "  %-12s declared %5.1f%%  observed %5.1f%%  %s CI [%.1f%%, %.1f%%]  count %d\n",
			br.Name, 100*br.Declared, 100*br.Observed, levelText(br.Interval.Level), 100*br.Interval.Lo, 100*br.Interval.Hi, br.Count)
	}
	names := make([]string, 0, len(v.Undeclared))
	for k := range v.Undeclared {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "  %-12s undeclared backend, count %d\n", k, v.Undeclared[k])
	}
	for _, c := range v.OC {
		scope := "exact"
		if !c.Exact {
			scope = "this backend's part, exact; the verdict fails at least this often"
		}
		var parts []string
		for _, m := range c.Marks {
			parts = append(parts, fmt.Sprintf("%s %.4g%% -> %.4g", m.Label, 100*m.Share, m.Fail))
		}
		fmt.Fprintf(&b, "  P(fail) by true share of %s (%s): %s\n", c.Backend, scope, strings.Join(parts, "; "))
	}
	if d := v.Dependence; d != nil && d.Detected {
		fmt.Fprintf(&b, "  dependence: %s\n", d.Finding)
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	return strings.TrimRight(b.String(), "\n")
}

func levelText(l float64) string {
	if l == 0 {
		return "?"
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", 100*l), "0"), ".") + "%"
}

// ReportVerdict attaches a verdict to the current spec: the typed weight measurement and
// the verdict's full JSON (kept off the console).
func ReportVerdict(title string, v verdict.Verdict) {
	AddReportEntry(model.Entry(title, WeightMeasurement(v)))
	if raw, err := json.Marshal(v); err == nil {
		AddReportEntry(VerdictEntryName, string(raw), ReportEntryVisibilityNever)
	}
}

// LatencySeries summarises an HdrHistogram of microseconds as a report series with
// log-spaced buckets (five per decade of milliseconds).
func LatencySeries(label string, h *hdrhistogram.Histogram, errors int64) model.LatencyHistogram {
	s := model.LatencyHistogram{Label: label, Errors: errors}
	if h == nil || h.TotalCount() == 0 {
		return s
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s.Count = h.TotalCount()
	s.MinMs, s.MeanMs, s.MaxMs = ms(h.Min()), h.Mean()/1000, ms(h.Max())
	s.P50Ms, s.P90Ms = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90))
	s.P99Ms, s.P999Ms = ms(h.ValueAtQuantile(99)), ms(h.ValueAtQuantile(99.9))
	counts := map[int]int64{}
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		counts[bucketIndex(ms(bar.From))] += bar.Count
	}
	idx := make([]int, 0, len(counts))
	for i := range counts {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		s.Buckets = append(s.Buckets, model.Bucket{LowerMs: bucketEdge(i), UpperMs: bucketEdge(i + 1), Count: counts[i]})
	}
	return s
}

// Buckets are [10^(i/5), 10^((i+1)/5)) ms; everything under 10 µs falls in the first.
func bucketIndex(ms float64) int {
	if ms < 0.01 {
		return -10
	}
	return int(math.Floor(5 * math.Log10(ms)))
}

func bucketEdge(i int) float64 { return math.Round(math.Pow(10, float64(i)/5)*1e4) / 1e4 }

// ReportLatency attaches latency series read side by side with their decision.
func ReportLatency(title string, d model.Decision, message string, series ...model.LatencyHistogram) {
	AddReportEntry(model.Entry(title, &model.LatencyHistograms{Series: series, Decision: d, Message: message}))
}

// PropagationSeries converts durations into a report series.
func PropagationSeries(label string, samples []time.Duration, errors int) model.PropagationSeries {
	s := model.PropagationSeries{Label: label, Errors: errors, SamplesMs: make([]float64, 0, len(samples))}
	for _, d := range samples {
		s.SamplesMs = append(s.SamplesMs, float64(d.Microseconds())/1000)
	}
	return s
}

// ReportPropagation attaches propagation series with their decision.
func ReportPropagation(title string, d model.Decision, message string, series ...model.PropagationSeries) {
	AddReportEntry(model.Entry(title, &model.Propagation{Series: series, Decision: d, Message: message}))
}

// DecisionOf maps pass/fail onto the report model.
func DecisionOf(pass bool) model.Decision {
	if pass {
		return model.DecisionPass
	}
	return model.DecisionFail
}
