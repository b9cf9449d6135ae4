package render

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/reports/model"
)

//go:embed report.html.tmpl
var pageTemplate string

//go:embed report.css
var pageCSS string

//go:embed report.js
var pageJS string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": pct,
	"ms":  ms,
	"secs": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05 MST")
	},
	"join": strings.Join,
	// Long notes (a verdict's full JSON, say) fold away behind their first characters.
	"long": func(s string) bool { return len(s) > 160 || strings.Contains(s, "\n") },
	"short": func(s string) string {
		s, _, _ = strings.Cut(s, "\n")
		if r := []rune(s); len(r) > 80 {
			s = string(r[:80]) + "…"
		}
		return s
	},
	"css": func() template.CSS { return template.CSS(pageCSS) },
	"js":  func() template.JS { return template.JS(pageJS) },
}).Parse(pageTemplate))

// view is what the template reads: the report plus what is derived from it for display.
type view struct {
	R         *model.Report
	Title     string
	Verdict   string
	Totals    counts
	Suites    []suiteView
	Failures  []specView
	Profiles  []profileView
	Conformed bool
	Upstream  *upstreamView
}

type counts struct{ Passed, Failed, Skipped, NotClaimed, Broken, Total int }

func (c *counts) add(o model.Outcome) {
	c.Total++
	switch {
	case o == model.OutcomePassed:
		c.Passed++
	case o == model.OutcomeNotClaimed:
		c.NotClaimed++
	case o.Failed():
		c.Failed++
	case o.NotRun():
		c.Skipped++
	default:
		c.Broken++
	}
}

type suiteView struct {
	model.Suite
	ID     string
	Counts counts
	Specs  []specView
}

type specView struct {
	model.Spec
	ID     string
	Suite  string
	Charts []chartView
}

type chartView struct {
	model.Measurement
	// SVGs are the drawings; more than one is drawn side by side.
	SVGs []template.HTML
	// Table is a small summary table under the drawing.
	Head []string
	Rows [][]string
}

type profileView struct {
	Name, Summary string
	Levels        []levelView
}

type levelView struct {
	Name, Result            string
	Passed, Failed, Skipped uint32
	FailedTests             []string
	SkippedTests            []string
}

// HTML writes the report as one self-contained page: styles, scripts and charts are inline and
// nothing is loaded over the network, so the file can be archived and opened offline.
func HTML(w io.Writer, r *model.Report) error {
	v := view{R: r, Title: "gatecheck report"}
	if r.Run.Implementation != "" {
		v.Title += " – " + r.Run.Implementation
	}
	switch {
	case r.Gate == nil:
		v.Verdict = ""
	case r.Gate.Code == 0:
		v.Verdict = "pass"
	case r.Gate.Code == 1:
		v.Verdict = "fail"
	default:
		v.Verdict = "incomplete"
	}
	for si, s := range r.Suites {
		sv := suiteView{Suite: s, ID: fmt.Sprintf("suite-%d", si)}
		for pi, sp := range s.Specs {
			spv := specView{Spec: sp, ID: fmt.Sprintf("spec-%d-%d", si, pi), Suite: s.Name}
			for mi, m := range sp.Measurements {
				spv.Charts = append(spv.Charts, chart(fmt.Sprintf("m-%d-%d-%d", si, pi, mi), m))
			}
			sv.Counts.add(sp.Outcome)
			v.Totals.add(sp.Outcome)
			if sp.Outcome.Failed() || sp.Outcome.Broken() {
				v.Failures = append(v.Failures, spv)
			}
			sv.Specs = append(sv.Specs, spv)
		}
		v.Suites = append(v.Suites, sv)
	}
	if c := r.Conformance; c != nil {
		for _, p := range c.Report.ProfileReports {
			pv := profileView{Name: p.Name, Summary: p.Summary}
			pv.Levels = append(pv.Levels, levelView{"core", string(p.Core.Result), p.Core.Passed, p.Core.Failed, p.Core.Skipped, p.Core.FailedTests, p.Core.SkippedTests})
			if e := p.Extended; e != nil {
				pv.Levels = append(pv.Levels, levelView{"extended", string(e.Result), e.Passed, e.Failed, e.Skipped, e.FailedTests, e.SkippedTests})
			}
			v.Profiles = append(v.Profiles, pv)
		}
	}
	v.Upstream = newUpstreamView(r.Upstream, r.Conformance)
	if err := page.Execute(w, v); err != nil {
		return fmt.Errorf("render HTML: %w", err)
	}
	return nil
}

// chart draws one measurement and its summary table.
func chart(id string, m model.Measurement) chartView {
	c := chartView{Measurement: m}
	switch {
	case m.Weight != nil:
		w := m.Weight
		c.SVGs = []template.HTML{splitChart(id, w)}
		c.Head = []string{"backend", "weight", "declared", "count", "observed", "interval"}
		for _, b := range w.Backends {
			c.Rows = append(c.Rows, []string{b.Backend, fmt.Sprint(b.Weight), pct(b.DeclaredShare), fmt.Sprint(b.Count), pct(b.Share),
				fmt.Sprintf("[%s, %s]", pct(b.Lo), pct(b.Hi))})
		}
		c.Rows = append(c.Rows, []string{"test", fmt.Sprintf("n = %d", w.N), testBand(w),
			fmt.Sprintf("α = %g", w.Alpha), fmt.Sprintf("power %s", pct(w.Power)), fmt.Sprintf("p = %.3g %s", w.PValue, w.Method)})
	case m.Latency != nil:
		c.SVGs = latencyCharts(id, m.Latency)
		c.Head = []string{""}
		stats := [][]string{{"count"}, {"min"}, {"mean"}, {"p50"}, {"p90"}, {"p99"}, {"p99.9"}, {"max"}, {"errors"}}
		for _, s := range m.Latency.Series {
			c.Head = append(c.Head, s.Label)
			for i, v := range []string{fmt.Sprint(s.Count), ms(s.MinMs), ms(s.MeanMs), ms(s.P50Ms), ms(s.P90Ms), ms(s.P99Ms), ms(s.P999Ms), ms(s.MaxMs), fmt.Sprint(s.Errors)} {
				stats[i] = append(stats[i], v)
			}
		}
		c.Rows = stats
	case m.Propagation != nil:
		c.SVGs = []template.HTML{cdfChart(id, m.Propagation)}
		c.Head = []string{"series", "samples", "errors", "min", "p50", "p90", "p99", "max"}
		for _, s := range m.Propagation.Series {
			sorted := finiteSorted(s.SamplesMs)
			lo, hi := math.NaN(), math.NaN()
			if len(sorted) > 0 {
				lo, hi = sorted[0], sorted[len(sorted)-1]
			}
			c.Rows = append(c.Rows, []string{s.Label, fmt.Sprint(len(sorted)), fmt.Sprint(s.Errors), ms(lo),
				ms(quantile(sorted, 0.5)), ms(quantile(sorted, 0.9)), ms(quantile(sorted, 0.99)), ms(hi)})
		}
	case m.Sidecar != nil:
		c.SVGs = ganttCharts(id, m.Sidecar)
		c.Head = []string{"variant", "container", "role", "events"}
		for _, v := range m.Sidecar.Variants {
			for _, ct := range v.Containers {
				var evs []string
				for _, e := range ct.Events {
					s := fmt.Sprintf("%s %s", e.Kind, ms(e.TimeMs))
					if e.Detail != "" {
						s += " (" + e.Detail + ")"
					}
					evs = append(evs, s)
				}
				c.Rows = append(c.Rows, []string{v.Variant, ct.Name, ct.Role, strings.Join(evs, ", ")})
			}
		}
	case m.Migration != nil:
		c.Head = []string{"", "request", "through the Ingress", "through the Gateway", "difference"}
		for i, r := range m.Migration.Rows {
			mark := "same"
			switch {
			case i == m.Migration.First:
				mark = "FIRST DIFFERENCE"
			case r.Diff != "":
				mark = "differs"
			}
			c.Rows = append(c.Rows, []string{mark, r.Request, r.Ingress, r.Gateway, r.Diff})
		}
	}
	return c
}
