package tcp

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/verdict"
)

var _ = Describe("TCPRoute weights", Label("tcp", "feature:weight"), Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		applyRoutes(ctx, "weights.yaml", nil)
		Eventually(func(g Gomega) {
			for range gwtest.ConvergeInARow {
				_, err := backendOn(ctx, portW)
				g.Expect(err).NotTo(HaveOccurred())
			}
		}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).Should(Succeed(), "listener tcp-w never connected")
	})

	DescribeTable("splits connections by weight",
		func(ctx SpecContext, declared string, expectFail bool) {
			backends, err := verdict.ParseBackends(declared)
			Expect(err).NotTo(HaveOccurred())
			cap := env.Requests(verdict.DefaultMaxRequests, 500)
			seq, err := verdict.NewSequential(backends, env.VerdictConfig(cap))
			Expect(err).NotTo(HaveOccurred())
			v := sampleConnections(ctx, portW, seq, cap, 8)
			title := "tcp-w (serves t1=70,t2=30) declared " + declared
			if expectFail {
				title += " (misconfigured on purpose: must fail)"
			}
			gwtest.ReportVerdict(title, v)
			if expectFail {
				Expect(v.Decision).To(Equal(verdict.Fail), "the route serves t1=70,t2=30; declaring %s must fail, and did not:\n%s", declared, gwtest.Explain(v))
				GinkgoWriter.Printf("failed as it must:\n%s\n", gwtest.Explain(v))
				return
			}
			Expect(v.Decision).To(Equal(verdict.Pass), "TCPRoute per-connection weights:\n%s", gwtest.Explain(v))
		},
		Entry("70/30", "t1=70,t2=30", false),
		// Valid for any implementation that claims TCPRoute (the suite runs only there): the
		// route is created once and BeforeAll waited for connections answered by a backend, so
		// every sampled connection is split 70/30 by the only version there is; declaring
		// 80/20 is a 10-point skew, caught by deterministic and random splitters alike.
		Entry("misconfigured: 70/30 served where 80/20 is declared", Label("negative"), "t1=80,t2=20", true),
	)
})
