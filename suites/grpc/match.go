package grpc

import (
	"context"
	"io"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
)

var _ = Describe("GRPCRoute matching", Label("grpc", "feature:grpc-match"), Ordered, func() {
	var c echopb.EchoClient

	BeforeAll(func(ctx SpecContext) {
		applyRoute(ctx, "match.yaml")
		c = echopb.NewEchoClient(dial("match.grpc.test"))
		convergeUnary(ctx, c, "g1")
	})

	It("routes an Exact service/method match (Echo/Unary) to g1, every time", func(ctx SpecContext) {
		got := map[string]int{}
		for range 50 {
			r, err := unary(ctx, c)
			Expect(err).NotTo(HaveOccurred())
			got[backendOf(r)]++
		}
		Expect(got).To(Equal(map[string]int{"g1": 50}), "Echo/Unary without headers matches only the Exact rule")
	})

	It("routes a header match (Echo/Unary with x-variant: canary) to g3, the rule with more header matches", func(ctx SpecContext) {
		convergeUnary(ctx, c, "g3", "x-variant", "canary")
		got := map[string]int{}
		for range 50 {
			r, err := unary(ctx, c, "x-variant", "canary")
			Expect(err).NotTo(HaveOccurred())
			got[backendOf(r)]++
		}
		Expect(got).To(Equal(map[string]int{"g3": 50}))
		r, err := unary(ctx, c, "x-variant", "stable")
		Expect(err).NotTo(HaveOccurred())
		Expect(backendOf(r)).To(Equal("g1"), "a header value that does not match falls back to the Exact rule")
	})

	It("routes RegularExpression matches (ServerStream, Bidi) to g2", func(ctx SpecContext) {
		for range 10 {
			sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			st, err := c.ServerStream(sctx, &echopb.StreamRequest{Request: &echopb.EchoRequest{Payload: "x"}, Count: 1})
			Expect(err).NotTo(HaveOccurred())
			r, err := st.Recv()
			Expect(err).NotTo(HaveOccurred(), "ServerStream through the regex rule")
			Expect(backendOf(r)).To(Equal("g2"))
			cancel()

			bctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			b, err := c.Bidi(bctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(b.Send(&echopb.EchoRequest{Payload: "y"})).To(Succeed())
			Expect(b.CloseSend()).To(Succeed())
			r, err = b.Recv()
			Expect(err).NotTo(HaveOccurred(), "Bidi through the regex rule")
			Expect(backendOf(r)).To(Equal("g2"))
			_, err = b.Recv()
			Expect(err).To(MatchError(io.EOF))
			cancel()
		}
	})

	It("answers UNIMPLEMENTED for a method no rule matches (grpc.health.v1.Health/Check)", Label("negative"), func(ctx SpecContext) {
		// Every backend serves Health, so an OK answer would mean a rule matched that
		// should not have. Not a control of gatecheck but a MUST for every implementation: a
		// request no route matches is rejected, for gRPC with Unimplemented (GatewaySpec,
		// "Listener Isolation"; grpc-go also reads an HTTP 404 as Unimplemented). The route
		// is one object, created once and converged on in BeforeAll: no timing dependence.
		hc := healthpb.NewHealthClient(dial("match.grpc.test"))
		cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		Expect(status.Code(err)).To(Equal(codes.Unimplemented), "Health/Check matches no rule of grpc-match: got %v", err)
	})
})
