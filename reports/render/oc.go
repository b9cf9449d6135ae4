package render

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"

	"github.com/gatecheck/gatecheck/reports/model"
)

// ocCharts draws a weight verdict's operating characteristic, one panel per tested backend:
// the exact probability that the verdict fails as a function of the backend's true share,
// with the declared share, the observed share and the labelled points (false-failure rate at
// the declared share, power at the designed skews, starved, doubled). It is what lets a
// reader trust a pass: how large a skew the test would have caught, and how surely.
func ocCharts(id string, v *model.WeightVerdict) template.HTML {
	var out strings.Builder
	for i, c := range v.OC {
		out.WriteString(string(ocChart(fmt.Sprintf("%s-oc%d", id, i), v, c)))
	}
	return template.HTML(out.String())
}

func ocChart(id string, v *model.WeightVerdict, c model.OperatingCurve) template.HTML {
	var pts []model.OCPoint
	for _, p := range c.Points {
		if finite(p.Share) && finite(p.Fail) {
			pts = append(pts, p)
		}
	}
	if len(pts) < 2 {
		return ""
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Share < pts[j].Share })
	const W, H, left, right, top, bottom = 680.0, 250.0, 60.0, 20.0, 36.0, 44.0
	lo, hi := pts[0].Share, pts[len(pts)-1].Share
	if !(hi > lo) {
		return ""
	}
	plotW, plotH := W-left-right, H-top-bottom
	x := func(s float64) float64 { return left + (clamp(s, lo, hi)-lo)/(hi-lo)*plotW }
	y := func(p float64) float64 { return top + (1-clamp(p, 0, 1))*plotH }
	unit := v.Unit
	if unit == "" {
		unit = "request"
	}
	scope := "exact"
	if !c.Exact {
		scope = "its part, exact: the verdict fails at least this often"
	}
	var b svgBuf
	b.f(`<svg id="%s" class="chart chart-oc" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="operating characteristic">`,
		esc(id), num(W), num(H), num(W), num(H))
	b.f(`<text class="ct" x="0" y="16">P(verdict fails) by true share of %s per %s (%s)</text>`,
		esc(c.Backend), esc(unit), esc(scope))
	// Grid: 0, 0.5, 1 and the target power.
	for _, g := range []float64{0, 0.5, 1} {
		b.f(`<line class="tick" x1="%s" x2="%s" y1="%s" y2="%s" stroke="#ccc"/>`, num(left), num(left+plotW), num(y(g)), num(y(g)))
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="end">%g</text>`, num(left-6), num(y(g)+4), g)
	}
	// Shares along the bottom, in percent.
	for i := 0; i <= 4; i++ {
		s := lo + (hi-lo)*float64(i)/4
		b.f(`<line class="tick" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(x(s)), num(x(s)), num(top+plotH), num(top+plotH+4))
		b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x(s)), num(top+plotH+16), pct(s))
	}
	b.f(`<text class="axis" x="%s" y="%s" text-anchor="middle">true share of %s</text>`, num(left+plotW/2), num(H-6), esc(c.Backend))
	// Declared and observed shares.
	b.f(`<line class="declared" x1="%s" x2="%s" y1="%s" y2="%s"><title>declared %s</title></line>`,
		num(x(c.DeclaredShare)), num(x(c.DeclaredShare)), num(top), num(top+plotH), pct(c.DeclaredShare))
	for _, s := range v.Backends {
		if s.Backend == c.Backend && finite(s.Share) && s.Share >= lo && s.Share <= hi {
			b.f(`<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="currentColor" stroke-dasharray="4 3"><title>observed %s (%d of %d)</title></line>`,
				num(x(s.Share)), num(x(s.Share)), num(top), num(top+plotH), pct(s.Share), s.Count, v.N)
			b.f(`<text class="lbl" x="%s" y="%s" text-anchor="middle">observed</text>`, num(x(s.Share)), num(top-4))
		}
	}
	// The curve.
	var path strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&path, "%s,%s ", num(x(p.Share)), num(y(p.Fail)))
	}
	b.f(`<polyline fill="none" stroke="currentColor" stroke-width="2" points="%s"/>`, strings.TrimSpace(path.String()))
	// Labelled points, with their exact numbers.
	for _, m := range c.Marks {
		if !finite(m.Share) || !finite(m.Fail) || m.Share < lo || m.Share > hi {
			continue
		}
		cx, cy := x(m.Share), y(m.Fail)
		b.f(`<circle cx="%s" cy="%s" r="4"><title>%s: true %s, P(fail) %s, expected %s %ss</title></circle>`,
			num(cx), num(cy), esc(m.Label), pct(m.Share), probText(m.Fail), num(math.Round(m.ExpectedN)), esc(unit))
		ty, anchor := cy-8, "middle"
		if m.Fail < 0.5 {
			ty = cy - 10
		} else {
			ty = cy + 16
		}
		b.f(`<text class="lbl" x="%s" y="%s" text-anchor="%s">%s %s</text>`, num(cx), num(ty), anchor, esc(m.Label), probText(m.Fail))
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// probText writes a probability readably at both ends: 9.8e-05, 0.5, 0.9906, 1.
func probText(p float64) string {
	switch {
	case p == 0 || p == 1:
		return fmt.Sprintf("%g", p)
	case p < 0.001:
		return fmt.Sprintf("%.2g", p)
	default:
		return fmt.Sprintf("%.4g", p)
	}
}

// testBand is the summary table's cell for what the verdict's band means: the designed skew
// when the verdict records one (it established no tolerance), else the old tolerance.
func testBand(w *model.WeightVerdict) string {
	if w.Delta > 0 {
		return fmt.Sprintf("designed skew ±%.1f pts", 100*w.Delta)
	}
	return fmt.Sprintf("±%s", pct(w.Tolerance))
}
