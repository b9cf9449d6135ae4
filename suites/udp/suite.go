// The udp suite checks UDPRoute through a Gateway with gatecheck's echo-backend --mode=udp:
// per-flow weight splits judged by the verdict engine (the unit is a flow: one client
// address:port), datagram loss and reordering measured and reported, and flow idle expiry
// observed (within the idle timeout a flow keeps its backend; past it, it may move).
package udp

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/udp"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
)

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

// Listener ports of the udp Gateway (fixtures/udp/suite.yaml).
const (
	portW      = 9100
	portLoss   = 9101
	portExpiry = 9102
	portDead   = 9103
)

// idleTimeout is the flow idle timeout the suite's Gateway asks for (its
// gatecheck.dev/udp-idle-timeout annotation in fixtures/udp/suite.yaml, which the reference
// implementation reads; TestIdleTimeoutMatchesFixture keeps the two equal). 2.5 s, not the 5 s
// it was: the expiry specs wait 1.6 and 4 x 0.4 times it, 16 s of a warm run's critical path
// at 5 s (issue 14), and the slack either side (1.5 s with traffic every 1 s, 1.5 s idle past
// the timeout) is still far above the reference proxy's per-flow deadline precision.
const idleTimeout = 2500 * time.Millisecond

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "udp", fixtures.Files, features.SupportGateway, features.SupportUDPRoute)
}

func applyRoutes(ctx context.Context, file string) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, nil)
}

// addr is a UDP listener's address; UDP is not reachable through a port-forward.
func addr(port int) (string, error) {
	if err := gw.UnknownPort(port); err != nil {
		return "", err
	}
	return gw.Addr(port), nil
}

// flowOpts is a short flow: three datagrams, each answer awaited up to 2 s after the last send.
var flowOpts = traffic.UDPFlowOptions{Datagrams: 3, Gap: 2 * time.Millisecond, Wait: 2 * time.Second, Size: 64}

// convergeFlows waits until gwtest.ConvergeInARow flows in a row to port are answered.
func convergeFlows(ctx context.Context, port int) {
	GinkgoHelper()
	a, err := addr(port)
	if err != nil {
		Fail(err.Error())
	}
	probe := traffic.UDPFlowBackend(a, "converge", flowOpts, traffic.NewUDPStats())
	Eventually(func(g Gomega) {
		for range gwtest.ConvergeInARow {
			_, err := probe(ctx)
			g.Expect(err).NotTo(HaveOccurred())
		}
	}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).WithPolling(500*time.Millisecond).Should(Succeed(),
		"UDP listener %d never answered %d flows in a row", port, gwtest.ConvergeInARow)
}
