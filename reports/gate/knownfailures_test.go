package gate

import (
	"strings"
	"testing"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"

	"github.com/gatecheck/gatecheck/reports/model"
)

// A failed upstream test the profile documents (conformance.knownFailures) does not fail the
// gate; any other failed test still does, and a documented failure does not hide a skipped core
// test.
func TestKnownFailures(t *testing.T) {
	t.Parallel()
	known := []model.KnownFailure{{Test: "HTTPRouteMultipleGateways", Reason: "one address for every Gateway"}}
	status := func(res confv1.Result, failed, skipped []string) confv1.Status {
		return confv1.Status{Result: res, Statistics: confv1.Statistics{Failed: uint32(len(failed)), Skipped: uint32(len(skipped))}, FailedTests: failed, SkippedTests: skipped}
	}
	for _, tc := range []struct {
		name     string
		core     confv1.Status
		extended confv1.Status
		known    []model.KnownFailure
		code     int
		reason   string // a substring of the reasons; "" for none
	}{
		{name: "documented core failure", code: 0,
			core: status(confv1.Failure, []string{"HTTPRouteMultipleGateways"}, nil), extended: status(confv1.Success, nil, nil), known: known},
		{name: "documented extended failure", code: 0,
			core: status(confv1.Success, nil, nil), extended: status(confv1.Failure, []string{"HTTPRouteMultipleGateways"}, nil), known: known},
		{name: "same failure undocumented", code: 1, reason: "failed HTTPRouteMultipleGateways",
			core: status(confv1.Failure, []string{"HTTPRouteMultipleGateways"}, nil), extended: status(confv1.Success, nil, nil)},
		{name: "another failure beside the documented one", code: 1, reason: "failed HTTPRouteHostnameIntersection; known failures (documented, not counted) HTTPRouteMultipleGateways",
			core: status(confv1.Failure, []string{"HTTPRouteHostnameIntersection", "HTTPRouteMultipleGateways"}, nil), extended: status(confv1.Success, nil, nil), known: known},
		{name: "documented failure and a skipped core test", code: 1, reason: `result "failure"; the gate requires success: known failures (documented, not counted) HTTPRouteMultipleGateways; skipped HTTPRouteSimpleSameNamespace`,
			core: status(confv1.Failure, []string{"HTTPRouteMultipleGateways"}, []string{"HTTPRouteSimpleSameNamespace"}), extended: status(confv1.Success, nil, nil), known: known},
		{name: "documented failure and a skipped extended test", code: 0,
			core: status(confv1.Success, nil, nil), extended: status(confv1.Failure, []string{"HTTPRouteMultipleGateways"}, []string{"HTTPRouteRequestMirror"}), known: known},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ext := tc.extended
			r := &model.Report{SchemaVersion: model.SchemaVersion, Conformance: &model.Conformance{KnownFailures: tc.known,
				Report: confv1.ConformanceReport{ProfileReports: []confv1.ProfileReport{{Name: "GATEWAY-HTTP", Core: tc.core,
					Extended: &confv1.ExtendedStatus{Status: ext}}}}}}
			code, reasons := Default().Evaluate(r)
			got := strings.Join(reasons, "\n")
			if code != tc.code || (tc.reason == "") != (got == "") || !strings.Contains(got, tc.reason) {
				t.Errorf("exit %d, reasons %q; want %d with %q", code, got, tc.code, tc.reason)
			}
		})
	}
}
