package udp

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

var _ = Describe("UDPRoute weights", Label("udp", "feature:weight"), Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		applyRoutes(ctx, "weights.yaml")
		convergeFlows(ctx, portW)
	})

	DescribeTable("splits flows by weight",
		func(ctx SpecContext, declared string, expectFail bool) {
			backends, err := verdict.ParseBackends(declared)
			Expect(err).NotTo(HaveOccurred())
			a, err := addr(portW)
			Expect(err).NotTo(HaveOccurred())
			cap := env.Requests(verdict.DefaultMaxRequests, 500)
			seq, err := verdict.NewSequential(backends, env.VerdictConfig(cap))
			Expect(err).NotTo(HaveOccurred())
			stats := traffic.NewUDPStats()
			v := traffic.SampleBackends(ctx, seq, cap, 8, "flow", traffic.UDPFlowBackend(a, "w", flowOpts, stats), func(err error) string { return err.Error() })
			title := "udp-w (serves u1=70,u2=30) declared " + declared
			if expectFail {
				title += " (misconfigured on purpose: must fail)"
			}
			gwtest.ReportVerdict(title, v)
			GinkgoWriter.Printf("datagrams: %s\n", stats.Summary())
			if expectFail {
				Expect(v.Decision).To(Equal(verdict.Fail), "the route serves u1=70,u2=30; declaring %s must fail, and did not:\n%s", declared, gwtest.Explain(v))
				GinkgoWriter.Printf("failed as it must:\n%s\n", gwtest.Explain(v))
				return
			}
			Expect(v.Decision).To(Equal(verdict.Pass), "UDPRoute per-flow weights:\n%s", gwtest.Explain(v))
		},
		Entry("70/30", "u1=70,u2=30", false),
		// Valid for any implementation that claims UDPRoute (the suite runs only there): the
		// route is created once and BeforeAll waited for answered flows, so every sampled flow
		// is split 70/30 by the only version there is; declaring 80/20 is a 10-point skew,
		// caught by deterministic and random splitters alike.
		Entry("misconfigured: 70/30 served where 80/20 is declared", Label("negative"), "u1=80,u2=20", true),
	)
})
