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
	gw  string
)

var _ = BeforeSuite(func(ctx SpecContext) {
	env = gwtest.Setup(ctx, "grpc")
	env.Require(features.SupportGateway, features.SupportGRPCRoute)
	objs := env.Render(fixtures.Files, "suite.yaml", nil)
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "grpc")
	var err error
	gw, err = env.WaitGateway(ctx, "grpc")
	Expect(err).NotTo(HaveOccurred())
})

func applyRoute(ctx context.Context, file string) {
	GinkgoHelper()
	objs := env.Render(fixtures.Files, file, nil)
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "grpc")
}
