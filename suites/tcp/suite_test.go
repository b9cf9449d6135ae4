// The tcp suite checks TCPRoute through a Gateway: routing per listener (sectionName),
// payload integrity, per-connection weights and connections that outlive route changes.
package tcp_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/tcp"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

func TestTCP(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "gatecheck tcp")
}

var (
	env *gwtest.Env
	gw  string
)

// Listener ports of the tcp Gateway (fixtures/tcp/suite.yaml).
const (
	portA     = 9000
	portB     = 9001
	portW     = 9002
	portOther = 9003
	portLong  = 9004
)

var _ = BeforeSuite(func(ctx SpecContext) {
	env = gwtest.Setup(ctx, "tcp")
	env.Require(features.SupportGateway, features.SupportTCPRoute)
	objs := env.Render(fixtures.Files, "suite.yaml", nil)
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "tcp")
	var err error
	gw, err = env.WaitGateway(ctx, "tcp")
	Expect(err).NotTo(HaveOccurred())
})

func applyRoutes(ctx context.Context, file string, data map[string]any) {
	GinkgoHelper()
	objs := env.Render(fixtures.Files, file, data)
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "tcp")
}
