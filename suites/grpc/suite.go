// The grpc suite checks GRPCRoute through a Gateway: method matching (Exact and
// RegularExpression), header matching, weights, and unary, server-streaming and bidi RPCs.
package grpc

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/grpc"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "grpc", fixtures.Files, features.SupportGateway, features.SupportGRPCRoute)
}

func applyRoute(ctx context.Context, file string) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, nil)
}
