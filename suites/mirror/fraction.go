package mirror

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/suites/internal/traffic"
	"github.com/gatecheck/gatecheck/suites/internal/verdict"
)

var _ = Describe("Partial request mirror", Label("mirror", "feature:mirror-percentage"), Ordered, func() {
	const percent, num, den = 25, 1, 3

	BeforeAll(func(ctx SpecContext) {
		env.Require(features.SupportHTTPRouteRequestPercentageMirror)
		applyRoute(ctx, "fraction.yaml", map[string]any{"Percent": percent, "Numerator": num, "Denominator": den})
	})

	DescribeTable("mirrors the declared share of requests",
		func(ctx SpecContext, path string, share float64) {
			d := env.Driver(url(path))
			d.Concurrency = 4
			_, err := gwtest.ConvergeOn(ctx, d, "primary")
			Expect(err).NotTo(HaveOccurred())
			n := env.Requests(4000, 500)
			check := &traffic.MirrorCheck{
				Driver: d, Mirrors: mirrorAdmins(ctx), Requests: n, Fraction: share,
				Config: env.VerdictConfig(n), MirrorIdentity: "mirror",
			}
			rep, err := check.Run(ctx)
			Expect(err).NotTo(HaveOccurred())
			gwtest.ReportVerdict(fmt.Sprintf("mirror %s declared %.4g%%", path, 100*share), rep.Verdict)
			Expect(rep.Verdict.Decision).To(Equal(verdict.Pass), "partial mirror %s:\n%s", path, gwtest.Explain(rep.Verdict))
		},
		Entry("percent: 25", "/mirror-percent", float64(percent)/100),
		Entry("fraction: 1/3", "/mirror-fraction", float64(num)/den),
	)
})
