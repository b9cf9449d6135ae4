package mirror

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

var _ = Describe("Request mirror delivery", Label("mirror", "feature:mirror"), func() {
	It("delivers every request to the mirror, by request id, and never returns its response", func(ctx SpecContext) {
		applyRoute(ctx, "delivery.yaml", map[string]any{"Route": "mirror-all", "Mirror": "mirror"})
		d := env.Driver(url("/mirror-all"))
		d.Concurrency = 4
		_, err := gwtest.ConvergeOn(ctx, d, "primary")
		Expect(err).NotTo(HaveOccurred())
		n := env.Requests(1000, 200)
		check := &traffic.MirrorCheck{
			Driver: d, Mirrors: mirrorAdmins(ctx), Requests: n, Fraction: 1,
			Config: env.VerdictConfig(n), MirrorIdentity: "mirror",
		}
		rep, err := check.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		gwtest.ReportVerdict("mirror every request to mirror", rep.Verdict)
		Expect(rep.Verdict.Decision).To(Equal(verdict.Pass), "mirror delivery (waited %s for copies, %d duplicates):\n%s",
			rep.WaitedFor.Round(time.Millisecond), rep.Duplicates, gwtest.Explain(rep.Verdict))
	})

	// Valid for any implementation that claims HTTPRouteRequestMirror (the suite runs only
	// there): the mirror filter and the primary backend are one route object, created once, so
	// once ConvergeOn sees the primary served the mirror is configured too, whenever and however
	// the implementation applied it; and no copy can reach the mirror Pods' records through a
	// port nothing listens on, however long the check waits (it matches by request id).
	It("fails when the mirror is never reached", Label("negative"), func(ctx SpecContext) {
		// The route mirrors to a Service port nothing listens on, while the check reads the
		// records of the mirror Pods: not one copy arrives, and the verdict must say so.
		applyRoute(ctx, "delivery.yaml", map[string]any{"Route": "mirror-broken", "Mirror": "mirror-refused"})
		d := env.Driver(url("/mirror-broken"))
		d.Concurrency = 4
		_, err := gwtest.ConvergeOn(ctx, d, "primary")
		Expect(err).NotTo(HaveOccurred())
		n := env.Requests(200, 50)
		check := &traffic.MirrorCheck{
			Driver: d, Mirrors: mirrorAdmins(ctx), Requests: n, Fraction: 1,
			Config: env.VerdictConfig(n), MirrorIdentity: "mirror", Settle: 3 * time.Second,
		}
		rep, err := check.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		gwtest.ReportVerdict("mirror to a port nothing listens on (misconfigured on purpose: must fail)", rep.Verdict)
		Expect(rep.Verdict.Decision).To(Equal(verdict.Fail), "a mirror that is never reached must fail the delivery check, and did not:\n%s", gwtest.Explain(rep.Verdict))
		GinkgoWriter.Printf("failed as it must:\n%s\n", gwtest.Explain(rep.Verdict))
	})
})
