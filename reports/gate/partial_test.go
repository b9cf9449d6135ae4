package gate

import (
	"strings"
	"testing"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"

	"github.com/gatecheck/gatecheck/reports/model"
)

// A partial ConformanceReport (built from the tests that finished before the suite stopped) is
// never a pass, even when every test in it passed and run.incomplete says nothing.
func TestPartialConformanceIsIncomplete(t *testing.T) {
	t.Parallel()
	ok := confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: confv1.Status{Result: confv1.Success}}
	for _, partial := range []bool{false, true} {
		r := &model.Report{SchemaVersion: model.SchemaVersion, Conformance: &model.Conformance{Partial: partial,
			Report: confv1.ConformanceReport{ProfileReports: []confv1.ProfileReport{ok}}}}
		code, reasons := Default().Evaluate(r)
		want := 0
		if partial {
			want = 2
		}
		if code != want || partial && !strings.Contains(strings.Join(reasons, "\n"), "ConformanceReport is partial") {
			t.Errorf("partial %v: exit %d %q; want %d", partial, code, reasons, want)
		}
	}
}
