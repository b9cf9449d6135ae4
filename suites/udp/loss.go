package udp

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
	"github.com/gatecheck/gatecheck/traffic"
)

// maxLoss is the datagram loss a correct implementation stays under here: the client, the
// Gateway and the backends share one cluster, datagrams are small, paced at 1 per ms per flow
// with at most traffic.UDPLossWindow in flight, so a correct data plane loses next to nothing;
// 1% leaves room for a busy machine.
const maxLoss = 0.01

// lossFlows runs flows concurrent flows of n datagrams each to port and adds them up.
func lossFlows(ctx context.Context, port, flows, n int) (*traffic.UDPStats, error) {
	a, err := addr(port)
	if err != nil {
		return nil, err
	}
	stats := traffic.NewUDPStats()
	opts := traffic.UDPFlowOptions{Datagrams: n, Gap: time.Millisecond, Wait: 2 * time.Second, Size: 256, Window: traffic.UDPLossWindow}
	var wg sync.WaitGroup
	errs := make([]error, flows)
	for i := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := traffic.UDPFlow(ctx, a, fmt.Sprintf("loss-%d-%d", port, i), opts)
			errs[i] = err
			stats.Add(r)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return stats, err
		}
	}
	return stats, nil
}

var _ = Describe("UDP datagram loss and reordering", Label("udp", "feature:loss", suiteenv.QuietLabel), Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		applyRoutes(ctx, "loss.yaml")
		convergeFlows(ctx, portLoss)
	})

	DescribeTable("measures loss and reordering per flow",
		func(ctx SpecContext, port int, listener string, n int, expectFail bool) {
			const flows = 4
			stats, err := lossFlows(ctx, port, flows, n)
			Expect(err).NotTo(HaveOccurred())
			loss := stats.LossRate()
			pass := loss <= maxLoss && stats.Split == 0
			msg := fmt.Sprintf("%s: %s (allowed: %.0f%% loss, no split flow; at most %d datagrams in flight per flow)", listener, stats.Summary(), 100*maxLoss, traffic.UDPLossWindow)
			title := fmt.Sprintf("%s: %d flows x %d datagrams, round trip and loss", listener, flows, n)
			if expectFail {
				title += " (backend port reaches nothing on purpose: must fail)"
			}
			gwtest.ReportLatency(title, gwtest.DecisionOf(pass), msg, gwtest.LatencySeries(listener, stats.Hist, int64(stats.Lost())))
			GinkgoWriter.Println(msg)
			if expectFail {
				Expect(pass).To(BeFalse(), "every datagram to %s goes to a Service port no Pod listens on; the loss check must fail and did not: %s", listener, msg)
				return
			}
			Expect(pass).To(BeTrue(), "%s", msg)
		},
		Entry("udp-loss (one backend)", portLoss, "udp-loss", 500, false),
		// Valid on every implementation: the route's only backend is a Service port that
		// reaches no listening socket, so no datagram can be answered. Fewer datagrams: with
		// none answered the Window moves only as datagrams expire (100/traffic.UDPLossWindow x 250 ms).
		Entry("misconfigured: backend port reaches nothing", Label("negative"), portDead, "udp-dead", 100, true),
	)
})
