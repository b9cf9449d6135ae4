package udp

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/suiteenv"
	"github.com/gatecheck/gatecheck/traffic"
)

var _ = Describe("UDP flow idle expiry", Label("udp", "feature:idle-expiry", suiteenv.QuietLabel), Ordered, func() {
	const flows = 24
	var (
		fs    []*traffic.UDPStickyFlow
		first []string
	)
	BeforeAll(func(ctx SpecContext) {
		applyRoutes(ctx, "expiry.yaml")
		convergeFlows(ctx, portExpiry)
		a, err := addr(portExpiry)
		Expect(err).NotTo(HaveOccurred())
		for i := range flows {
			f, err := traffic.DialUDPFlow(ctx, a, fmt.Sprintf("expiry-%d", i))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(f.Close)
			b, err := f.Exchange()
			Expect(err).NotTo(HaveOccurred())
			fs, first = append(fs, f), append(first, b)
		}
	})

	It("keeps every flow on its backend while it is never idle for the timeout", func(ctx SpecContext) {
		// Four rounds 0.4 x the timeout apart: 1.6 x the timeout of traffic, never idle for it.
		for round := 1; round <= 4; round++ {
			sleep(ctx, idleTimeout*2/5)
			for i, f := range fs {
				b, err := f.Exchange()
				Expect(err).NotTo(HaveOccurred())
				Expect(b).To(Equal(first[i]), "round %d: flow %s moved from %s to %s without being idle for %s", round, f.Name, first[i], b, idleTimeout)
			}
		}
	})

	It("lets flows idle past the timeout start over on a newly chosen backend", func(ctx SpecContext) {
		// 24 flows split 50/50, idle 1.6 x the timeout: each starts over and picks u1 or u2
		// afresh, so all 24 keep their backend with probability 2^-24 < 1e-7. None moving
		// means flows never expire (or their timeout is longer than the Gateway asked for).
		sleep(ctx, idleTimeout*8/5)
		moved := 0
		for i, f := range fs {
			b, err := f.Exchange()
			Expect(err).NotTo(HaveOccurred())
			if b != first[i] {
				moved++
			}
		}
		msg := fmt.Sprintf("%d of %d flows moved after %s idle (idle timeout %s; expected about half)", moved, flows, idleTimeout*8/5, idleTimeout)
		GinkgoWriter.Println(msg)
		AddReportEntry("udp idle expiry", msg)
		Expect(moved).To(BeNumerically(">", 0), "%s", msg)
	})
})

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
