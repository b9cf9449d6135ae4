package mirror

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	fixtures "github.com/gatecheck/gatecheck/fixtures/mirror"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
	"github.com/gatecheck/gatecheck/traffic"
)

// The isolation bound: with a broken mirror the primary's p99 may grow to at most
// max(isoFactor x baseline p99, baseline p99 + isoSlack), both measured at the same time and
// rate (the baseline is a route to the same primary without the mirror). A mirror the data plane waits for costs the primary at least a failed
// connection or a mirror round trip per request and shows far beyond it.
//
// isoRate is each route's request rate: 1,000 requests take 2.5 s per case (5 s at the 200/s
// it was; four cases are most of the suite, which sets the pace of a warm run's last step). A
// higher rate is no easier on the data plane: it keeps twice as many copies to a broken mirror
// in flight, and a proxy that bounds them by blocking the primary shows sooner.
const (
	isoFactor = 2.0
	isoSlack  = 25 * time.Millisecond
	isoRate   = 400
)

var _ = Describe("Request mirror isolation", Label("mirror", "feature:mirror", "isolation", suiteenv.QuietLabel), Ordered, ContinueOnFailure, func() {
	BeforeAll(func(ctx SpecContext) {
		objs := gwtest.Select(env.Render(fixtures.Files, "isolation.yaml", nil), "HTTPRoute")
		env.Apply(ctx, objs)
		env.WaitReady(ctx, objs, "mirror")
	})

	// measure drives the baseline route and the mirrored route at the same time and rate,
	// so that noise from the shared machine (other processes, GC) lands on both alike.
	measure := func(ctx SpecContext, basePath, withPath string) (base, with traffic.Summary, leaks int) {
		GinkgoHelper()
		drivers := map[string]*traffic.Driver{}
		for _, p := range []string{basePath, withPath} {
			d := env.Driver(url(p))
			d.Concurrency = 4
			d.Rate = max(50, isoRate*env.Config.Scale)
			_, err := gwtest.ConvergeOn(ctx, d, "primary")
			Expect(err).NotTo(HaveOccurred())
			drivers[p] = d
		}
		n := env.Requests(1000, 200)
		var wg sync.WaitGroup
		var leaked atomic.Int64
		sums := map[string]traffic.Summary{}
		errs := map[string]error{}
		var mu sync.Mutex
		for p, d := range drivers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sum, err := d.Run(ctx, traffic.Limit{Requests: n}, func(r traffic.Result) bool {
					if r.Backend != "" && r.Backend != "primary" {
						leaked.Add(1)
					}
					return false
				})
				mu.Lock()
				sums[p], errs[p] = sum, err
				mu.Unlock()
			}()
		}
		wg.Wait()
		Expect(errs[basePath]).NotTo(HaveOccurred())
		Expect(errs[withPath]).NotTo(HaveOccurred())
		return sums[basePath], sums[withPath], int(leaked.Load())
	}

	DescribeTable("a broken mirror changes neither the primary's status codes nor its p99",
		func(ctx SpecContext, mirrorSvc, what, route, query string) {
			if mirrorSvc == "mirror-slow" {
				objs := gwtest.Without(env.Render(fixtures.Files, "isolation.yaml", nil), "HTTPRoute")
				env.Apply(ctx, objs)
				env.WaitReady(ctx, objs, "mirror")
			}
			applyRoute(ctx, "delivery.yaml", map[string]any{"Route": route, "Mirror": mirrorSvc})
			base, with, leaks := measure(ctx, "/iso-baseline"+query, "/"+route+"/x"+query)
			bp99 := time.Duration(base.Latency.P99 * float64(time.Millisecond))
			wp99 := time.Duration(with.Latency.P99 * float64(time.Millisecond))
			bound := max(time.Duration(isoFactor*float64(bp99)), bp99+isoSlack)
			msg := fmt.Sprintf("mirror %s (%s): primary p99 %s with the mirror vs %s without (bound %s = max(%.0fx, +%s)); n=%d and %d at %.0f requests/s each; failed %d (%s) vs %d; %d responses from a backend other than primary",
				mirrorSvc, what, wp99.Round(10*time.Microsecond), bp99.Round(10*time.Microsecond), bound.Round(10*time.Microsecond), isoFactor, isoSlack,
				with.Completed, base.Completed, max(50, isoRate*env.Config.Scale), with.Failures(), with.FailureText(), base.Failures(), leaks)
			pass := with.Failures() == 0 && leaks == 0 && wp99 <= bound
			gwtest.ReportLatency("mirror isolation: "+what, gwtest.DecisionOf(pass), msg,
				gwtest.LatencySeries("no mirror", base.Histogram(), int64(base.Failures())),
				gwtest.LatencySeries("mirror "+what, with.Histogram(), int64(with.Failures())))
			Expect(base.Failures()).To(BeZero(), "the baseline (no mirror) itself failed requests: %s", base.FailureText())
			Expect(with.Failures()).To(BeZero(), "a broken mirror changed the primary's status codes: %s", msg)
			Expect(leaks).To(BeZero(), "%s", msg)
			Expect(wp99).To(BeNumerically("<=", bound), "a broken mirror slowed the primary: %s", msg)
		},
		Entry("mirror answers 404 to every copy", "mirror-errors", "answers errors", "iso-mirror-errors", ""),
		Entry("mirror refuses connections", "mirror-refused", "refuses connections", "iso-mirror-refused", ""),
		Entry("mirror is gone (no endpoints)", "mirror-gone", "has no endpoints", "iso-mirror-gone", ""),
		Entry("mirror takes 2 s and answers 500", "mirror-slow", "takes 2 s, then 500", "iso-mirror-slow", ""),
	)
})
