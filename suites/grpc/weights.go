package grpc

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/verdict"
)

var _ = Describe("GRPCRoute weights", Label("grpc", "feature:weight"), Ordered, func() {
	var c echopb.EchoClient

	BeforeAll(func(ctx SpecContext) {
		applyRoute(ctx, "weights.yaml")
		c = echopb.NewEchoClient(dial("weights.grpc.test"))
		Eventually(func(g Gomega) {
			for range gwtest.ConvergeInARow {
				_, err := unary(ctx, c)
				g.Expect(err).NotTo(HaveOccurred())
			}
		}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).Should(Succeed(), "GRPCRoute grpc-weights never answered")
	})

	DescribeTable("splits unary RPCs on one HTTP/2 connection by weight",
		func(ctx SpecContext, declared string, expectFail bool) {
			backends, err := verdict.ParseBackends(declared)
			Expect(err).NotTo(HaveOccurred())
			cap := env.Requests(verdict.DefaultMaxRequests, 500)
			seq, err := verdict.NewSequential(backends, env.VerdictConfig(cap))
			Expect(err).NotTo(HaveOccurred())
			v := sampleUnary(ctx, c, seq, cap, 8)
			title := "grpc-weights (serves g1=80,g2=20) declared " + declared
			if expectFail {
				title += " (misconfigured on purpose: must fail)"
			}
			gwtest.ReportVerdict(title, v)
			if expectFail {
				Expect(v.Decision).To(Equal(verdict.Fail), "the route serves g1=80,g2=20; declaring %s must fail, and did not:\n%s", declared, gwtest.Explain(v))
				GinkgoWriter.Printf("failed as it must:\n%s\n", gwtest.Explain(v))
				return
			}
			Expect(v.Decision).To(Equal(verdict.Pass), "GRPCRoute weights:\n%s", gwtest.Explain(v))
		},
		Entry("80/20", "g1=80,g2=20", false),
		// Valid for any implementation that claims GRPCRoute (the suite runs only there): the
		// route is created once and BeforeAll waited until it answered, so every sampled call is
		// split 80/20 by the only version there is; declaring 90/10 is a 10-point skew.
		Entry("misconfigured: 80/20 served where 90/10 is declared", Label("negative"), "g1=90,g2=10", true),
	)
})
