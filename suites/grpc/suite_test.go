// The grpc suite checks GRPCRoute through a Gateway: method matching (Exact and
// RegularExpression), header matching, weights, and unary, server-streaming and bidi RPCs.
package grpc_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/grpc"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

func TestGRPC(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "gatecheck grpc")
}

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

var _ = BeforeSuite(func(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "grpc", fixtures.Files, features.SupportGateway, features.SupportGRPCRoute)
})

func applyRoute(ctx context.Context, file string) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, nil)
}
