// Package skiprecorder is a tiny Ginkgo suite shaped like the one binary for all suites
// (suites/all: one BeforeSuite, every suite's containers labelled with its name, a label filter
// selecting one) that skips through gwtest.SkipNotClaimed exactly as a suite does when the
// GatewayClass does not claim a feature, either in BeforeSuite (the whole suite) or in one
// spec's BeforeEach. Its Ginkgo JSON reports are recorded under reports/ingest/testdata/skipped
// by reports/ingest/testdata/record-skips.sh; the real suites/all binary records the other case
// there (a suite skipped because no cluster is configured).
package skiprecorder

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

// scenario: "suite" skips the whole suite in BeforeSuite, "spec" one spec in its BeforeEach.
var scenario = os.Getenv("RECORDER_SCENARIO")

const source = "GatewayClass traefik status.supportedFeatures"

func TestRecorder(t *testing.T) {
	RegisterFailHandler(Fail)
	if scenario == "" {
		t.Skip("RECORDER_SCENARIO is not set; run reports/ingest/testdata/record-skips.sh")
	}
	RunSpecs(t, "gatecheck mirror")
}

var _ = BeforeSuite(func() {
	if scenario == "suite" {
		gwtest.SkipNotClaimed("traefik", source, []string{"HTTPRouteRequestMirror"})
	}
})

var _ = Describe("Request mirror delivery", Label("mirror", "feature:mirror"), func() {
	It("delivers every request to the mirror", func() {})
	It("fails when the mirror is never reached", Label("negative"), func() {})
	Describe("a fraction of requests", func() {
		BeforeEach(func() {
			if scenario == "spec" {
				gwtest.SkipNotClaimed("traefik", source, []string{"HTTPRouteRequestPercentageMirror"})
			}
		})
		It("mirrors 50% of requests", func() {})
	})
})

// Another suite's spec, which the label filter "mirror" excludes: Ginkgo still lists it, skipped.
var _ = Describe("Weighted split", Label("canary", "feature:weight"), func() {
	It("serves the declared shares", func() { Fail("the label filter must exclude this spec") })
})
