// The tcp suite checks TCPRoute through a Gateway: routing per listener (sectionName),
// payload integrity, per-connection weights and connections that outlive route changes.
package tcp

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/tcp"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

// Listener ports of the tcp Gateway (fixtures/tcp/suite.yaml).
const (
	portA     = 9000
	portB     = 9001
	portW     = 9002
	portOther = 9003
	portLong  = 9004
)

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "tcp", fixtures.Files, features.SupportGateway, features.SupportTCPRoute)
}

func applyRoutes(ctx context.Context, file string, data map[string]any) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, data)
}
