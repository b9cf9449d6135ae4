package gate_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
)

// Recorded Ginkgo reports (reports/ingest/testdata/skipped, real Ginkgo runs): a suite skipped
// because the GatewayClass does not claim its feature is a skip, never "could not run"; a suite
// skipped for want of a cluster could not run. The Traefik run of issue 15 exited 2 on the first.
func TestSkippedSuitesRecorded(t *testing.T) {
	t.Parallel()
	noSkips := `
version: 1
suites:
- name: "*"
  allowSkips: false
`
	for _, tc := range []struct {
		name, file, gate string
		wantCode         int
		wantReason       string // substring of the joined reasons; "" = no reasons
	}{
		{"not claimed, whole suite, default gate", "notclaimed-suite.json", "", 0, ""},
		{"not claimed, one spec, default gate", "notclaimed-spec.json", "", 0, ""},
		{"not claimed under a gate allowing no skips is a verdict, not could-not-run", "notclaimed-suite.json", noSkips, 1,
			`spec "Request mirror delivery delivers every request to the mirror" was not claimed: the GatewayClass does not claim HTTPRouteRequestMirror`},
		{"no cluster could not run", "nocluster.json", "", 2, `suite "gatecheck mirror": Suite skipped in BeforeSuite`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ingest.ReadFile(filepath.Join("..", "ingest", "testdata", "skipped", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			g := gate.Default()
			if tc.gate != "" {
				g = mustParse(t, tc.gate)
			}
			code, reasons := g.Evaluate(r)
			joined := strings.Join(reasons, "\n")
			if code != tc.wantCode {
				t.Errorf("exit %d; want %d; reasons:\n%s", code, tc.wantCode, joined)
			}
			if tc.wantReason == "" && len(reasons) > 0 || !strings.Contains(joined, tc.wantReason) {
				t.Errorf("reasons:\n%s\nwant one containing %q", joined, tc.wantReason)
			}
		})
	}
}

// A notClaimed spec is never exit 2, whatever node it is (a BeforeSuite that skipped for an
// unclaimed feature and carried a measurement is still listed).
func TestNotClaimedIsNeverIncomplete(t *testing.T) {
	t.Parallel()
	nc := func(node string) model.Spec {
		return model.Spec{Name: "x", NodeType: node, Outcome: model.OutcomeNotClaimed, NotClaimed: []string{"TCPRoute"}, SkipReason: "not claimed: ..."}
	}
	for _, node := range []string{"It", "BeforeSuite"} {
		code, reasons := gate.Default().Evaluate(report(suite("gatecheck tcp", nc(node))))
		if code != 0 {
			t.Errorf("%s notClaimed: exit %d %q; want 0", node, code, reasons)
		}
	}
}
