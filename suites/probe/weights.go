package probe

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

// Re-exported so that callers outside suites/ (the CLI) can name them.
type (
	Backend  = verdict.Backend
	Verdict  = verdict.Verdict
	Decision = verdict.Decision
	Config   = verdict.Config
	Driver   = traffic.Driver
	Summary  = traffic.Summary
)

// Decisions and defaults, re-exported.
const (
	Pass               = verdict.Pass
	Fail               = verdict.Fail
	Inconclusive       = verdict.Inconclusive
	DefaultAlpha       = verdict.DefaultAlpha
	DefaultPower       = verdict.DefaultPower
	DefaultTolerance   = verdict.DefaultTolerance
	DefaultDelta       = verdict.DefaultDelta
	DefaultMaxRequests = verdict.DefaultMaxRequests
)

// DefaultIdentityFields are the JSON fields naming the backend, tried in order.
var DefaultIdentityFields = traffic.DefaultIdentityFields

// ParseBackends reads "v2=90,v3=10".
func ParseBackends(s string) ([]Backend, error) { return verdict.ParseBackends(s) }

// JSONIdentity and HeaderIdentity choose how a response names its backend.
var (
	JSONIdentity   = traffic.JSONIdentity
	HeaderIdentity = traffic.HeaderIdentity
)

// WeightsProbe checks a live route's split: converge, then sample until the sequential test
// decides.
type WeightsProbe struct {
	Driver   *traffic.Driver
	Backends []verdict.Backend
	Config   verdict.Config
	// MaxFailures is how many failed requests are tolerated (left out of the shares).
	MaxFailures int
	// Converge is the number of consecutive identified 2xx responses required before
	// sampling; 0 skips it. ConvergeTimeout bounds that wait (default 30s).
	Converge        int
	ConvergeTimeout time.Duration
}

// WeightsReport is what a weights probe found; it is written as JSON or text.
type WeightsReport struct {
	URL          string        `json:"url"`
	Host         string        `json:"host,omitempty"`
	Header       []string      `json:"header,omitempty"`
	Fresh        bool          `json:"freshConnections"`
	H2C          bool          `json:"h2c"`
	ConvergeTime time.Duration `json:"-"`
	// ConvergeSeconds is ConvergeTime for JSON readers.
	ConvergeSeconds float64         `json:"convergeSeconds,omitempty"`
	Verdict         verdict.Verdict `json:"verdict"`
	Traffic         traffic.Summary `json:"traffic"`
}

// ErrNotConverged marks a probe whose target never answered consistently, so nothing was
// measured.
type ErrNotConverged struct{ Err error }

func (e *ErrNotConverged) Error() string { return e.Err.Error() }
func (e *ErrNotConverged) Unwrap() error { return e.Err }

// Run converges (if asked) and samples. The error is for a probe that could not measure;
// a failed verdict is in the report.
func (p *WeightsProbe) Run(ctx context.Context) (WeightsReport, error) {
	rep := WeightsReport{URL: p.Driver.URL, Host: p.Driver.Host, Fresh: p.Driver.FreshConnections, H2C: p.Driver.H2C}
	for k, vs := range p.Driver.Header {
		for _, v := range vs {
			rep.Header = append(rep.Header, k+": "+v)
		}
	}
	seq, err := verdict.NewSequential(p.Backends, p.Config)
	if err != nil {
		return rep, fmt.Errorf("weights probe: %w", err)
	}
	if p.Converge > 0 {
		timeout := p.ConvergeTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		took, err := p.Driver.Converge(ctx, p.Converge, timeout, nil)
		rep.ConvergeTime, rep.ConvergeSeconds = took, took.Seconds()
		if err != nil {
			return rep, &ErrNotConverged{Err: err}
		}
	}
	cfg := p.Config
	if cfg.MaxRequests == 0 {
		cfg.MaxRequests = verdict.DefaultMaxRequests
	}
	v, sum, err := traffic.Sample(ctx, p.Driver, seq, cfg.MaxRequests, p.MaxFailures)
	rep.Verdict, rep.Traffic = v, sum
	return rep, err
}

// WriteText renders the report for a person.
func (r WeightsReport) WriteText(w io.Writer) error {
	var b strings.Builder
	target := r.URL
	if r.Host != "" {
		target += " (Host: " + r.Host + ")"
	}
	conn := "keep-alive connections"
	if r.Fresh {
		conn = "one connection per request"
	}
	proto := "HTTP/1.1"
	if r.H2C {
		proto = "h2c"
	}
	fmt.Fprintf(&b, "probe weights %s, %s, %s\n", target, proto, conn)
	for _, h := range r.Header {
		fmt.Fprintf(&b, "  header %s\n", h)
	}
	failures := "none"
	if f := r.Traffic.Failures(); f > 0 {
		failures = fmt.Sprintf("%d (%s)", f, r.Traffic.FailureText())
	}
	fmt.Fprintf(&b, "%s sent in %s; failed requests: %s\n", commas(r.Traffic.Sent), r.Traffic.Elapsed.Round(time.Millisecond), failures)
	if err := r.writeVerdict(&b); err != nil {
		return err
	}
	l := r.Traffic.Latency
	fmt.Fprintf(&b, "latency: p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms (%d samples)\n", l.P50, l.P90, l.P99, l.Max, l.Count)
	if r.ConvergeTime > 0 {
		fmt.Fprintf(&b, "converged in %s before sampling\n", r.ConvergeTime.Round(time.Millisecond))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeVerdict renders the verdict: decision, n, per-backend shares with intervals, the test's
// error rates and warnings. The tcp and grpc probes share it.
func (r WeightsReport) writeVerdict(b *strings.Builder) error {
	v := r.Verdict
	fmt.Fprintf(b, "verdict: %s: %s\n", strings.ToUpper(string(v.Decision)), v.Message)
	unit := v.Unit
	if unit == "" {
		unit = "request"
	}
	fmt.Fprintf(b, "n: %s %ss counted (split per %s)\n", commas(v.N), unit, unit)
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	level := "CI"
	if len(v.Backends) > 0 {
		level = fmt.Sprintf("%.4g%% CI", 100*v.Backends[0].Interval.Level)
	}
	fmt.Fprintf(tw, "  backend\tweight\tdeclared\tobserved\t%s\tcount\t\n", level)
	for _, br := range v.Backends {
		mark := ""
		if !br.Pass {
			mark = "  <- off"
		}
		fmt.Fprintf(tw, "  %s\t%g\t%.1f%%\t%.2f%%\t%.2f–%.2f%%\t%d\t%s\n", br.Name, br.Weight, 100*br.Declared,
			100*br.Observed, 100*br.Interval.Lo, 100*br.Interval.Hi, br.Count, mark)
	}
	names := make([]string, 0, len(v.Undeclared))
	for name := range v.Undeclared {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := v.Undeclared[name]
		fmt.Fprintf(tw, "  %s\t(undeclared)\t0.0%%\t%.2f%%\t\t%d\t  <- off\n", name, 100*float64(c)/float64(max(v.N, 1)), c)
	}
	_ = tw.Flush()
	if v.DF > 0 {
		fmt.Fprintf(b, "chi-square: %.3g (df %d), p-value %.3g (goodness of fit; reported, not used to decide)\n", v.ChiSquare, v.DF, v.PValue)
	}
	writeDesign(b, v)
	for _, wmsg := range v.Warnings {
		fmt.Fprintf(b, "warning: %s\n", wmsg)
	}
	return nil
}

// writeDesign renders what the verdict tested: the hypotheses, the expected and most units,
// the exact operating characteristic at its labelled points, and the dependence tests.
func writeDesign(b *strings.Builder, v verdict.Verdict) {
	unit := v.Unit
	if unit == "" {
		unit = "request"
	}
	if v.Hypotheses != "" {
		fmt.Fprintf(b, "tested: %s\n", v.Hypotheses)
	}
	if len(v.Tests) > 0 {
		allowed := ""
		if v.NeededN > v.MaxRequests {
			allowed = fmt.Sprintf(" (only %s allowed: it can fail, not pass)", commas(v.MaxRequests))
		}
		fmt.Fprintf(b, "design: expected %s %ss for a correct split, at most %s%s; false-failure <= %.2g (target %.2g), power >= %.4f\n",
			commas(int(v.ExpectedN+0.5)), unit, commas(v.NeededN), allowed, v.AchievedAlpha, v.Alpha, v.Power)
	}
	for _, c := range v.OC {
		scope := "exact"
		if !c.Exact {
			scope = "this backend's part, exact; the verdict fails at least this often"
		}
		var parts []string
		for _, m := range c.Marks {
			parts = append(parts, fmt.Sprintf("%s %s -> %.4g", m.Label, pctShare(m.Share), m.Fail))
		}
		fmt.Fprintf(b, "P(fail) by true share of %s (%s): %s\n", c.Backend, scope, strings.Join(parts, "; "))
	}
	if d := v.Dependence; d != nil {
		switch {
		case d.Detected:
			fmt.Fprintf(b, "dependence: DETECTED: %s\n", d.Finding)
		case len(d.Tests) > 0:
			minP, level := 1.0, 0.0
			var orders []string
			for _, t := range d.Tests {
				if t.PValue < minP {
					minP = t.PValue
				}
				level = t.Level
				if !slices.Contains(orders, t.Order) {
					orders = append(orders, t.Order)
				}
			}
			conns := ""
			if d.Connections > 1 {
				conns = fmt.Sprintf(", %d connections", d.Connections)
			}
			fmt.Fprintf(b, "dependence: none found (exact runs tests in %s%s; smallest p %.3g, level %.2g)\n", strings.Join(orders, " and "), conns, minP, level)
		}
	}
}

func pctShare(p float64) string {
	s := strconv.FormatFloat(100*p, 'f', 2, 64)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".") + "%"
}

// commas renders 4000 as "4,000".
func commas(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	var b strings.Builder
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
