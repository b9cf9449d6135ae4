package ingest_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
)

// The files in testdata/skipped are real Ginkgo JSON reports (record-skips.sh): the one-binary
// suites skipping the mirror suite for want of a cluster, and a suite shaped like it skipping
// through gwtest.SkipNotClaimed in BeforeSuite or in one spec.

type specOutcome struct {
	Name       string
	Outcome    model.Outcome
	NotClaimed []string
	Reason     string // prefix of the skip reason
}

func outcomes(s model.Suite, prefixLen int) []specOutcome {
	var out []specOutcome
	for _, sp := range s.Specs {
		r := sp.SkipReason
		if len(r) > prefixLen {
			r = r[:prefixLen]
		}
		out = append(out, specOutcome{sp.Name, sp.Outcome, sp.NotClaimed, r})
	}
	return out
}

func TestSuiteSkippedInBeforeSuiteForUnclaimedFeature(t *testing.T) {
	t.Parallel()
	r, err := ingest.ReadFile(filepath.Join("testdata", "skipped", "notclaimed-suite.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Suites[0]
	if len(s.FailureReasons) != 0 {
		t.Errorf("FailureReasons = %q; want none: a suite skipped for an unclaimed feature did not fail", s.FailureReasons)
	}
	if diff := cmp.Diff([]string{"HTTPRouteRequestMirror"}, s.NotClaimed); diff != "" {
		t.Errorf("suite NotClaimed (-want +got):\n%s", diff)
	}
	mirror := []string{"HTTPRouteRequestMirror"}
	want := []specOutcome{
		// Another suite's spec, excluded by the label filter: untouched.
		{"Weighted split serves the declared shares", model.OutcomeSkipped, nil, ""},
		{"Request mirror delivery delivers every request to the mirror", model.OutcomeNotClaimed, mirror, "not claimed: GatewayClass traefik"},
		{"Request mirror delivery fails when the mirror is never reached", model.OutcomeNotClaimed, mirror, "not claimed: GatewayClass traefik"},
		{"Request mirror delivery a fraction of requests mirrors 50% of requests", model.OutcomeNotClaimed, mirror, "not claimed: GatewayClass traefik"},
	}
	if diff := cmp.Diff(want, outcomes(s, len("not claimed: GatewayClass traefik"))); diff != "" {
		t.Errorf("specs (-want +got):\n%s", diff)
	}
	// The JSON says so too, and reads back the same.
	b, err := r.MarshalIndent()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"outcome": "notClaimed"`) || !strings.Contains(string(b), `"notClaimed": [`) {
		t.Errorf("report.json does not carry the notClaimed outcome and features:\n%.2000s", b)
	}
	back, err := ingest.Parse("report.json", b)
	if err != nil {
		t.Fatalf("saved report does not read back: %v", err)
	}
	if diff := cmp.Diff(outcomes(s, 1000), outcomes(back.Suites[0], 1000)); diff != "" {
		t.Errorf("read back (-saved +read):\n%s", diff)
	}
}

func TestSpecSkippedForUnclaimedFeature(t *testing.T) {
	t.Parallel()
	r, err := ingest.ReadFile(filepath.Join("testdata", "skipped", "notclaimed-spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Suites[0]
	if len(s.FailureReasons) != 0 || len(s.NotClaimed) != 0 {
		t.Errorf("suite FailureReasons %q NotClaimed %q; want none: only one spec was skipped", s.FailureReasons, s.NotClaimed)
	}
	want := []specOutcome{
		{"Weighted split serves the declared shares", model.OutcomeSkipped, nil, ""},
		{"Request mirror delivery delivers every request to the mirror", model.OutcomePassed, nil, ""},
		{"Request mirror delivery fails when the mirror is never reached", model.OutcomePassed, nil, ""},
		{"Request mirror delivery a fraction of requests mirrors 50% of requests", model.OutcomeNotClaimed, []string{"HTTPRouteRequestPercentageMirror"}, "not claimed: GatewayClass traefik"},
	}
	if diff := cmp.Diff(want, outcomes(s, len("not claimed: GatewayClass traefik"))); diff != "" {
		t.Errorf("specs (-want +got):\n%s", diff)
	}
}

func TestSuiteSkippedInBeforeSuiteWithoutCluster(t *testing.T) {
	t.Parallel()
	r, err := ingest.ReadFile(filepath.Join("testdata", "skipped", "nocluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Suites[0]
	if diff := cmp.Diff([]string{"Suite skipped in BeforeSuite"}, s.FailureReasons); diff != "" {
		t.Errorf("FailureReasons (-want +got):\n%s", diff)
	}
	if len(s.NotClaimed) != 0 {
		t.Errorf("suite NotClaimed = %q; want none: the suite was skipped for want of a cluster", s.NotClaimed)
	}
	mirror, other := 0, 0
	for _, sp := range s.Specs {
		if sp.Outcome != model.OutcomeSkipped {
			t.Errorf("spec %q: outcome %q; want skipped", sp.Name, sp.Outcome)
		}
		if strings.Contains(sp.Location, "/suites/mirror/") {
			mirror++
			if !strings.HasPrefix(sp.SkipReason, "no cluster configured") {
				t.Errorf("mirror spec %q: skip reason %q; want BeforeSuite's \"no cluster configured ...\"", sp.Name, sp.SkipReason)
			}
		} else {
			other++
			if sp.SkipReason != "" {
				t.Errorf("spec %q of another suite (excluded by the label filter): skip reason %q; want none", sp.Name, sp.SkipReason)
			}
		}
	}
	if mirror == 0 || other == 0 {
		t.Errorf("%d mirror specs and %d others; the recording must hold both", mirror, other)
	}
}
