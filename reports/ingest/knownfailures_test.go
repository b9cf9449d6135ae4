package ingest

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reports/model"
)

// A saved report keeps the profile's known failures (they are not in the ConformanceReport's
// raw YAML, which parsing re-derives), so `gatecheck report` gates it as the run did.
func TestKnownFailuresSurviveReparse(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../testdata/conformance-report.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConformance("conformance-report.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	known := []model.KnownFailure{{Test: "HTTPRouteMultipleGateways", Reason: "one address for every Gateway"}}
	c.KnownFailures = known
	data, err := json.Marshal(&model.Report{SchemaVersion: model.SchemaVersion, Conformance: c})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse("report.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(known, r.Conformance.KnownFailures); diff != "" {
		t.Errorf("known failures after a reparse (-want +got):\n%s", diff)
	}
	if got := r.Conformance.KnownFailure("HTTPRouteMultipleGateways"); got != known[0].Reason {
		t.Errorf("KnownFailure = %q; want %q", got, known[0].Reason)
	}
}
