package render

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/reports/model"
)

// The charts are drawn here, on the server side, as inline SVG: the page needs no script or
// network to show them, and a chart is as testable as a string.

// svgBuf accumulates SVG markup; every text it writes goes through esc.
type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, args ...any) { fmt.Fprintf(&b.Builder, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// num formats a coordinate compactly; non-finite values (never expected) become 0 so that a bad
// measurement cannot produce invalid markup.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return fmt.Sprintf("%.1f", v)
}

func pct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

// ms formats a duration in milliseconds with sensible precision.
func ms(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

// palette colours series and backends; the CSS defines .c0 ... .c5 with the same colours.
const paletteSize = 6

func clamp(v, lo, hi float64) float64 {
	if math.IsNaN(v) {
		return lo
	}
	return math.Max(lo, math.Min(hi, v))
}

// splitChart draws a weight verdict: the declared and observed splits as stacked bars, then
// each backend's deviation from its declared share with the confidence interval as a whisker
// and the tolerance as a band.
func splitChart(id string, v *model.WeightVerdict) template.HTML {
	const W, left, right = 680.0, 170.0, 20.0
	plotW := W - left - right
	rows := len(v.Backends)
	H := 40 + 2*28 + 36 + float64(rows)*30 + 34
	var b svgBuf
	b.f(`<svg id="%s" class="chart chart-split" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="weight split">`,
		esc(id), num(W), num(H), num(W), num(H))
	b.f(`<text class="ct" x="0" y="16">split: declared vs observed (n = %d)</text>`, v.N)
	// Stacked bars.
	var totalW float64
	var totalC int
	for _, s := range v.Backends {
		totalW += float64(s.Weight)
		totalC += s.Count
	}
	for row, kind := range []string{"declared", "observed"} {
		y := 28 + float64(row)*28
		b.f(`<text class="lbl" x="%s" y="%s" text-anchor="end">%s</text>`, num(left-8), num(y+15), kind)
		x := left
		for i, s := range v.Backends {
			var frac float64
			if kind == "declared" && totalW > 0 {
				frac = float64(s.Weight) / totalW
			} else if kind == "observed" && totalC > 0 {
				frac = float64(s.Count) / float64(totalC)
			}
			w := clamp(frac, 0, 1) * plotW
			b.f(`<rect class="seg c%d" x="%s" y="%s" width="%s" height="20"><title>%s %s: %s</title></rect>`,
				i%paletteSize, num(x), num(y), num(w), esc(s.Backend), kind, pct(frac))
			if w > 40 {
				b.f(`<text class="seglbl" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x+w/2), num(y+14), pct(frac))
			}
			x += w
		}
	}
	// Deviation rows on a shared axis in percentage points.
	r := 2 * math.Max(v.Tolerance, v.Delta)
	for _, s := range v.Backends {
		for _, e := range []float64{s.Lo - s.DeclaredShare, s.Hi - s.DeclaredShare, s.Share - s.DeclaredShare} {
			if !math.IsNaN(e) && !math.IsInf(e, 0) {
				r = math.Max(r, math.Abs(e)*1.15)
			}
		}
	}
	if r <= 0 {
		r = 0.05
	}
	x := func(dev float64) float64 { return left + (clamp(dev, -r, r)+r)/(2*r)*plotW }
	top := 28 + 2*28 + 28.0
	// A verdict that records its designed skew (Delta) is not a tolerance test: the band
	// shows the skew it is designed to catch, not a range it established.
	band, bandText := v.Tolerance, fmt.Sprintf("±%.1f tolerance", 100*v.Tolerance)
	if v.Delta > 0 {
		band, bandText = v.Delta, fmt.Sprintf("band: ±%.1f-pt designed skew", 100*v.Delta)
	}
	b.f(`<text class="ct" x="0" y="%s">share − declared share (points), %s interval, %s</text>`,
		num(top-10), confidence(v.Alpha), bandText)
	bottom := top + float64(rows)*30
	if band > 0 {
		b.f(`<rect class="tol" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
			num(x(-band)), num(top), num(x(band)-x(-band)), num(bottom-top), esc(bandText))
	}
	b.f(`<line class="declared" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(x(0)), num(x(0)), num(top-4), num(bottom+4))
	for i, s := range v.Backends {
		y := top + float64(i)*30 + 15
		inside := s.Lo >= s.DeclaredShare-v.Tolerance && s.Hi <= s.DeclaredShare+v.Tolerance
		if v.Delta > 0 {
			// A designed-skew verdict claims no band: mark a share whose interval excludes
			// its declared share in a failed verdict.
			inside = v.Decision != model.DecisionFail || (s.Lo <= s.DeclaredShare && s.DeclaredShare <= s.Hi)
		}
		cls := "ok"
		if !inside {
			cls = "bad"
		}
		b.f(`<text class="lbl" x="%s" y="%s" text-anchor="end">%s (%d)</text>`, num(left-8), num(y+4), esc(s.Backend), s.Weight)
		b.f(`<g class="whisker %s"><title>%s: observed %s (%d of %d), interval [%s, %s], declared %s</title>`,
			cls, esc(s.Backend), pct(s.Share), s.Count, v.N, pct(s.Lo), pct(s.Hi), pct(s.DeclaredShare))
		b.f(`<line x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(x(s.Lo-s.DeclaredShare)), num(x(s.Hi-s.DeclaredShare)), num(y), num(y))
		for _, e := range []float64{s.Lo, s.Hi} {
			b.f(`<line x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(x(e-s.DeclaredShare)), num(x(e-s.DeclaredShare)), num(y-7), num(y+7))
		}
		b.f(`<circle cx="%s" cy="%s" r="4"/></g>`, num(x(s.Share-s.DeclaredShare)), num(y))
	}
	for _, t := range []float64{-r, -r / 2, 0, r / 2, r} {
		b.f(`<line class="tick" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(x(t)), num(x(t)), num(bottom), num(bottom+4))
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">%+.1f</text>`, num(x(t)), num(bottom+16), 100*t)
	}
	b.f(`</svg>`)
	// The operating characteristic, when the verdict carries it (oc.go).
	return template.HTML(b.String()) + ocCharts(id, v)
}

func confidence(alpha float64) string {
	if alpha <= 0 || alpha >= 1 {
		return "confidence"
	}
	// Enough digits that a small alpha never rounds to "100%": 1e-4 -> 99.99%.
	digits := 1
	for a := alpha * 100; a < 1 && digits < 8; a *= 10 {
		digits++
	}
	v := strings.TrimRight(strings.TrimRight(strconv.FormatFloat((1-alpha)*100, 'f', digits, 64), "0"), ".")
	return v + "%"
}

// latencyCharts draws each histogram of m at the same scale, so they compare side by side:
// x is latency (log-scaled when the range spans more than a decade and a half), y is the share
// of the series' samples in each bucket, and the percentiles are marked.
func latencyCharts(id string, m *model.LatencyHistograms) []template.HTML {
	lo, hi := math.Inf(1), math.Inf(-1)
	var ymax float64
	for _, s := range m.Series {
		total := bucketTotal(s)
		for _, bk := range s.Buckets {
			if bk.Count <= 0 || total <= 0 {
				continue
			}
			lo = math.Min(lo, bk.LowerMs)
			hi = math.Max(hi, bk.UpperMs)
			ymax = math.Max(ymax, float64(bk.Count)/float64(total))
		}
		for _, p := range []float64{s.P50Ms, s.P90Ms, s.P99Ms, s.P999Ms} {
			if p > 0 && !math.IsInf(p, 0) {
				hi = math.Max(hi, p)
			}
		}
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || hi <= lo {
		lo, hi = 0, 1
	}
	logScale := lo > 0 && hi/lo > 30
	const W, H, left, right, top, bottom = 340.0, 210.0, 40.0, 26.0, 26.0, 34.0
	plotW, plotH := W-left-right, H-top-bottom
	x := func(v float64) float64 {
		if logScale {
			return left + clamp((math.Log(math.Max(v, lo))-math.Log(lo))/(math.Log(hi)-math.Log(lo)), 0, 1)*plotW
		}
		return left + clamp((v-lo)/(hi-lo), 0, 1)*plotW
	}
	if ymax <= 0 {
		ymax = 1
	}
	y := func(f float64) float64 { return top + plotH - clamp(f/ymax, 0, 1)*plotH }
	var out []template.HTML
	for i, s := range m.Series {
		var b svgBuf
		b.f(`<svg id="%s-%d" class="chart chart-latency" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="latency histogram">`,
			esc(id), i, num(W), num(H), num(W), num(H))
		b.f(`<text class="ct" x="0" y="14">%s (n = %d)</text>`, esc(s.Label), s.Count)
		total := bucketTotal(s)
		for _, bk := range s.Buckets {
			if bk.Count <= 0 || total <= 0 {
				continue
			}
			f := float64(bk.Count) / float64(total)
			x0, x1 := x(bk.LowerMs), x(bk.UpperMs)
			b.f(`<rect class="hbar c%d" x="%s" y="%s" width="%s" height="%s"><title>%s – %s: %d (%s)</title></rect>`,
				i%paletteSize, num(x0), num(y(f)), num(math.Max(x1-x0-0.5, 0.5)), num(top+plotH-y(f)), ms(bk.LowerMs), ms(bk.UpperMs), bk.Count, pct(f))
		}
		for j, p := range []struct {
			name string
			v    float64
		}{{"p50", s.P50Ms}, {"p90", s.P90Ms}, {"p99", s.P99Ms}, {"p99.9", s.P999Ms}} {
			if p.v <= 0 {
				continue
			}
			px := x(p.v)
			b.f(`<line class="pline" x1="%s" x2="%s" y1="%s" y2="%s"><title>%s %s</title></line>`, num(px), num(px), num(top), num(top+plotH), p.name, ms(p.v))
			b.f(`<text class="plbl" x="%s" y="%s">%s</text>`, num(px+2), num(top+8+float64(j)*10), p.name)
		}
		b.f(`<line class="axisline" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(left), num(left+plotW), num(top+plotH), num(top+plotH))
		for _, t := range axisTicks(lo, hi, logScale) {
			b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x(t)), num(top+plotH+14), esc(ms(t)))
		}
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="end">%s</text>`, num(left-4), num(top+6), pct(ymax))
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">latency%s</text>`, num(left+plotW/2), num(H-4), map[bool]string{true: " (log scale)", false: ""}[logScale])
		b.f(`</svg>`)
		out = append(out, template.HTML(b.String()))
	}
	return out
}

func bucketTotal(s model.LatencyHistogram) int64 {
	var t int64
	for _, b := range s.Buckets {
		if b.Count > 0 {
			t += b.Count
		}
	}
	return t
}

// axisTicks returns up to five tick values across [lo, hi].
func axisTicks(lo, hi float64, logScale bool) []float64 {
	var ts []float64
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		if logScale {
			ts = append(ts, math.Exp(math.Log(lo)+f*(math.Log(hi)-math.Log(lo))))
		} else {
			ts = append(ts, lo+f*(hi-lo))
		}
	}
	return ts
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func finiteSorted(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// cdfChart draws the empirical CDF of each propagation series as a step line.
func cdfChart(id string, p *model.Propagation) template.HTML {
	const W, H, left, right, top, bottom = 680.0, 280.0, 44.0, 160.0, 26.0, 36.0
	plotW, plotH := W-left-right, H-top-bottom
	sorted := make([][]float64, len(p.Series))
	hi := 0.0
	for i, s := range p.Series {
		sorted[i] = finiteSorted(s.SamplesMs)
		if n := len(sorted[i]); n > 0 {
			hi = math.Max(hi, sorted[i][n-1])
		}
	}
	if hi <= 0 {
		hi = 1
	}
	x := func(v float64) float64 { return left + clamp(v/hi, 0, 1)*plotW }
	y := func(f float64) float64 { return top + plotH - clamp(f, 0, 1)*plotH }
	var b svgBuf
	b.f(`<svg id="%s" class="chart chart-cdf" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="propagation CDF">`,
		esc(id), num(W), num(H), num(W), num(H))
	b.f(`<text class="ct" x="0" y="14">share of changes visible within t</text>`)
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		b.f(`<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(left), num(left+plotW), num(y(f)), num(y(f)))
		if f != 0.9 { // too close to 1 to label legibly; the line alone marks p90
			b.f(`<text class="axis" x="%s" y="%s" text-anchor="end">%g</text>`, num(left-4), num(y(f)+4), f)
		}
	}
	for i, s := range sorted {
		n := len(s)
		if n == 0 {
			continue
		}
		// At most ~400 steps: a CDF of 10,000 samples looks the same and weighs far less.
		step := max(1, n/400)
		var d strings.Builder
		fmt.Fprintf(&d, "M%s,%s", num(x(0)), num(y(0)))
		prev := 0.0
		for k := 0; k < n; k += step {
			fmt.Fprintf(&d, " H%s V%s", num(x(s[k])), num(y(float64(k+1)/float64(n))))
			prev = float64(k+1) / float64(n)
		}
		if prev < 1 {
			fmt.Fprintf(&d, " H%s V%s", num(x(s[n-1])), num(y(1)))
		}
		b.f(`<path class="cdf s%d" d="%s"><title>%s: %d samples, p50 %s, p99 %s</title></path>`,
			i%paletteSize, d.String(), esc(p.Series[i].Label), n, ms(quantile(s, 0.5)), ms(quantile(s, 0.99)))
		ly := top + 10 + float64(i)*18
		b.f(`<rect class="c%d" x="%s" y="%s" width="12" height="4"/>`, i%paletteSize, num(left+plotW+12), num(ly-4))
		b.f(`<text class="lbl" x="%s" y="%s">%s</text>`, num(left+plotW+28), num(ly+1), esc(p.Series[i].Label))
	}
	b.f(`<line class="axisline" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(left), num(left+plotW), num(top+plotH), num(top+plotH))
	for _, t := range axisTicks(0, hi, false) {
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x(t)), num(top+plotH+14), esc(ms(t)))
	}
	b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">time from API write to first request routed by the change</text>`, num(left+plotW/2), num(H-4))
	b.f(`</svg>`)
	return template.HTML(b.String())
}

// ganttCharts draws each variant's container lifecycles on one shared time axis so that the
// legacy and native variants read side by side.
func ganttCharts(id string, m *model.SidecarTimelines) []template.HTML {
	end := 0.0
	for _, v := range m.Variants {
		for _, c := range v.Containers {
			for _, e := range c.Events {
				if !math.IsNaN(e.TimeMs) && !math.IsInf(e.TimeMs, 0) {
					end = math.Max(end, e.TimeMs)
				}
			}
		}
	}
	if end <= 0 {
		end = 1
	}
	end *= 1.04
	const W, left, right, top = 430.0, 110.0, 26.0, 28.0
	plotW := W - left - right
	x := func(t float64) float64 { return left + clamp(t/end, 0, 1)*plotW }
	var out []template.HTML
	for vi, v := range m.Variants {
		H := top + float64(len(v.Containers))*30 + 40
		var b svgBuf
		b.f(`<svg id="%s-%d" class="chart chart-gantt" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="container timeline">`,
			esc(id), vi, num(W), num(H), num(W), num(H))
		b.f(`<text class="ct" x="0" y="14">%s</text>`, esc(v.Variant))
		for ci, c := range v.Containers {
			y := top + float64(ci)*30
			b.f(`<text class="lbl" x="%s" y="%s" text-anchor="end">%s</text>`, num(left-8), num(y+12), esc(c.Name))
			if c.Role != "" {
				b.f(`<text class="role" x="%s" y="%s" text-anchor="end">%s</text>`, num(left-8), num(y+23), esc(c.Role))
			}
			evs := slices.Clone(c.Events)
			slices.SortStableFunc(evs, func(a, b model.ContainerEvent) int {
				return compareFloat(a.TimeMs, b.TimeMs)
			})
			for k, e := range evs {
				state := map[model.EventKind]string{
					model.EventStart: "starting", model.EventRestart: "starting",
					model.EventReady: "running", model.EventSigterm: "terminating",
				}[e.Kind]
				if state == "" {
					continue
				}
				t1 := end
				if k+1 < len(evs) {
					t1 = evs[k+1].TimeMs
				}
				b.f(`<rect class="seg-%s" x="%s" y="%s" width="%s" height="18"><title>%s %s: %s – %s</title></rect>`,
					state, num(x(e.TimeMs)), num(y), num(math.Max(x(t1)-x(e.TimeMs), 1)), esc(c.Name), state, ms(e.TimeMs), ms(t1))
			}
			for _, e := range evs {
				title := fmt.Sprintf("%s %s at %s", c.Name, e.Kind, ms(e.TimeMs))
				if e.Detail != "" {
					title += " (" + e.Detail + ")"
				}
				b.f(`<line class="ev ev-%s" x1="%s" x2="%s" y1="%s" y2="%s"><title>%s</title></line>`,
					esc(string(e.Kind)), num(x(e.TimeMs)), num(x(e.TimeMs)), num(y-3), num(y+21), esc(title))
			}
		}
		base := top + float64(len(v.Containers))*30
		b.f(`<line class="axisline" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(left), num(left+plotW), num(base), num(base))
		for _, t := range axisTicks(0, end, false) {
			b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x(t)), num(base+14), esc(ms(t)))
		}
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">time since Pod creation</text>`, num(left+plotW/2), num(base+32))
		b.f(`</svg>`)
		out = append(out, template.HTML(b.String()))
	}
	return out
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
