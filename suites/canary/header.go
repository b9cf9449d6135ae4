package canary

import (
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

var _ = Describe("Header-matched canary", Label("canary", "feature:weight", "feature:header-match"), Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		applyRoute(ctx, "header.yaml", nil)
	})

	It("splits x-api-version: v2 requests 90/10 between v2 and v3", func(ctx SpecContext) {
		d := env.Driver(url("/header-canary"))
		d.Header = http.Header{"X-Api-Version": {"v2"}}
		_, err := gwtest.ConvergeOn(ctx, d, "v2", "v3")
		Expect(err).NotTo(HaveOccurred())
		cap := env.Requests(verdict.DefaultMaxRequests, 500)
		seq, err := verdict.NewSequential(split("v2=90,v3=10,v1=0"), env.VerdictConfig(cap))
		Expect(err).NotTo(HaveOccurred())
		v, _, err := traffic.Sample(ctx, d, seq, cap, 0)
		Expect(err).NotTo(HaveOccurred())
		gwtest.ReportVerdict("header canary: x-api-version: v2 declared v2=90,v3=10", v)
		Expect(v.Decision).To(Equal(verdict.Pass), "requests with x-api-version: v2:\n%s", gwtest.Explain(v))
	})

	DescribeTable("sends every other request to v2 only",
		func(ctx SpecContext, header http.Header) {
			d := env.Driver(url("/header-canary"))
			d.Header = header
			_, err := gwtest.ConvergeOn(ctx, d, "v2")
			Expect(err).NotTo(HaveOccurred())
			// Only the zero-weight check applies, and it runs to the cap: n clean responses
			// rule out a leak rate above 1-(1-power)^(1/n) (0.46% at n=1,000).
			cap := env.Requests(1000, 200)
			seq, err := verdict.NewSequential(split("v2=1,v3=0,v1=0"), env.VerdictConfig(cap))
			Expect(err).NotTo(HaveOccurred())
			v, _, err := traffic.Sample(ctx, d, seq, cap, 0)
			Expect(err).NotTo(HaveOccurred())
			gwtest.ReportVerdict("header canary: "+describeHeader(header)+" declared v2 only", v)
			Expect(v.Decision).To(Equal(verdict.Pass), "requests with %s:\n%s", describeHeader(header), gwtest.Explain(v))
		},
		Entry("no x-api-version header", http.Header{}),
		Entry("x-api-version: v1", http.Header{"X-Api-Version": {"v1"}}),
		Entry("x-api-version: v3", http.Header{"X-Api-Version": {"v3"}}),
	)
})

func describeHeader(h http.Header) string {
	if v := h.Get("X-Api-Version"); v != "" {
		return "x-api-version: " + v
	}
	return "no x-api-version header"
}
