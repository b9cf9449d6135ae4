package mirror_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/suites/internal/traffic"
)

// The isolation bound: with a broken mirror the primary's p99 may grow to at most
// max(isoFactor x baseline p99, baseline p99 + isoSlack), both measured in the same spec at
// the same rate. A mirror the data plane waits for costs the primary at least a failed
// connection or a mirror round trip per request and shows far beyond it.
const (
	isoFactor = 2.0
	isoSlack  = 25 * time.Millisecond
	isoRate   = 200
)

var _ = Describe("Request mirror isolation", Label("mirror", "feature:mirror", "isolation"), Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		applyRoute(ctx, "isolation.yaml", nil)
	})

	measure := func(ctx SpecContext, path string) (traffic.Summary, int) {
		GinkgoHelper()
		d := env.Driver(url(path))
		d.Concurrency = 4
		d.Rate = max(50, isoRate*env.Config.Scale)
		_, err := gwtest.ConvergeOn(ctx, d, "primary")
		Expect(err).NotTo(HaveOccurred())
		leaks := 0
		sum, err := d.Run(ctx, traffic.Limit{Requests: env.Requests(1000, 200)}, func(r traffic.Result) bool {
			if r.Backend != "" && r.Backend != "primary" {
				leaks++
			}
			return false
		})
		Expect(err).NotTo(HaveOccurred())
		return sum, leaks
	}

	DescribeTable("a broken mirror changes neither the primary's status codes nor its p99",
		func(ctx SpecContext, mirrorSvc, what string) {
			route := "iso-" + mirrorSvc
			applyRoute(ctx, "delivery.yaml", map[string]any{"Route": route, "Mirror": mirrorSvc})
			base, _ := measure(ctx, "/iso-baseline")
			with, leaks := measure(ctx, "/"+route)
			bp99 := time.Duration(base.Latency.P99 * float64(time.Millisecond))
			wp99 := time.Duration(with.Latency.P99 * float64(time.Millisecond))
			bound := max(time.Duration(isoFactor*float64(bp99)), bp99+isoSlack)
			msg := fmt.Sprintf("mirror %s (%s): primary p99 %s with the mirror vs %s without (bound %s = max(%.0fx, +%s)); n=%d and %d; failed %d (%s) vs %d; %d responses from a backend other than primary",
				mirrorSvc, what, wp99.Round(10*time.Microsecond), bp99.Round(10*time.Microsecond), bound.Round(10*time.Microsecond), isoFactor, isoSlack,
				with.Completed, base.Completed, with.Failures(), with.FailureText(), base.Failures(), leaks)
			pass := with.Failures() == 0 && leaks == 0 && wp99 <= bound
			gwtest.ReportLatency("mirror isolation: "+what, gwtest.DecisionOf(pass), msg,
				gwtest.LatencySeries("no mirror", base.Histogram(), int64(base.Failures())),
				gwtest.LatencySeries("mirror "+what, with.Histogram(), int64(with.Failures())))
			Expect(base.Failures()).To(BeZero(), "the baseline (no mirror) itself failed requests: %s", base.FailureText())
			Expect(with.Failures()).To(BeZero(), "a broken mirror changed the primary's status codes: %s", msg)
			Expect(leaks).To(BeZero(), "%s", msg)
			Expect(wp99).To(BeNumerically("<=", bound), "a broken mirror slowed the primary: %s", msg)
		},
		Entry("mirror answers 404 to every copy", "mirror-errors", "answers errors"),
		Entry("mirror refuses connections", "mirror-refused", "refuses connections"),
		Entry("mirror is gone (no endpoints)", "mirror-gone", "has no endpoints"),
		// The echo backend has no switch yet to delay every response (its ?delay= would
		// delay the primary too, which gets the same request); see the suite's notes.
		PEntry("mirror delays every response by 2 s", "mirror-slow", "delays 2 s"),
	)
})
