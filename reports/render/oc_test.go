package render_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/model"
)

// A weight verdict with an operating characteristic gets a chart of it: one panel per tested
// backend, with its labelled points and their exact numbers, the declared and observed
// shares, and no NaN from degenerate points.
func TestHTMLOperatingCharacteristic(t *testing.T) {
	t.Parallel()
	nan := func() float64 { var z float64; return z / z }()
	w := &model.WeightVerdict{
		N: 1204, Alpha: 1e-4, Power: 0.9906, Delta: 0.03, Unit: "request", Decision: model.DecisionPass,
		Backends: []model.WeightShare{
			{Backend: "v2", Weight: 90, DeclaredShare: 0.9, Count: 1086, Share: 0.902, Lo: 0.88, Hi: 0.92},
			{Backend: "v3", Weight: 10, DeclaredShare: 0.1, Count: 118, Share: 0.098, Lo: 0.08, Hi: 0.12},
		},
		OC: []model.OperatingCurve{{
			Backend: "v3", DeclaredShare: 0.1, Exact: true,
			Points: []model.OCPoint{{Share: 0.05, Fail: 1}, {Share: 0.07, Fail: 0.9906}, {Share: 0.1, Fail: 9.84e-5},
				{Share: 0.13, Fail: 0.9907}, {Share: 0.15, Fail: 1}, {Share: nan, Fail: 0.5}},
			Marks: []model.OCPoint{{Label: "declared", Share: 0.1, Fail: 9.84e-5, ExpectedN: 1535},
				{Label: "skew down", Share: 0.07, Fail: 0.9906}, {Label: "skew up", Share: 0.13, Fail: 0.9907},
				{Label: "nothing", Share: 0, Fail: 1}},
		}},
	}
	r := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{{Name: "canary", Specs: []model.Spec{{
		Name: "split 90/10", Outcome: model.OutcomePassed, Measurements: []model.Measurement{model.New("split 90/10", w)},
	}}}}}
	page := renderHTML(t, r)
	if n := strings.Count(page, `class="chart chart-oc"`); n != 1 {
		t.Errorf("operating-characteristic charts: got %d; want 1", n)
	}
	for _, want := range []string{"P(verdict fails) by true share of v3 per request (exact)", "declared 9.8e-05", "skew down 0.9906", "skew up 0.9907",
		"band: ±3.0-pt designed skew", "observed"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(page, "tolerance</text>") || strings.Contains(page, "±0.0%") {
		t.Errorf("a designed-skew verdict is drawn or tabulated with a tolerance band")
	}
	if !strings.Contains(page, "designed skew ±3.0 pts") {
		t.Errorf("the summary table lacks the designed skew")
	}
	if m := regexp.MustCompile(`="[^"]*(NaN|Inf)[^"]*"`).FindString(page); m != "" {
		t.Errorf("HTML has a NaN or Inf attribute: %s", m)
	}
	// Without a curve, no chart.
	w.OC = nil
	r.Suites[0].Specs[0].Measurements = []model.Measurement{model.New("split 90/10", w)}
	if strings.Contains(renderHTML(t, r), "chart-oc") {
		t.Errorf("an operating-characteristic chart without a curve")
	}
}
