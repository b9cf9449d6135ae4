package grpc

import (
	"context"
	"fmt"
	"io"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
)

var _ = Describe("gRPC call types through the Gateway", Label("grpc", "feature:grpc-streaming"), Ordered, func() {
	var c echopb.EchoClient

	BeforeAll(func(ctx SpecContext) {
		applyRoute(ctx, "streams.yaml")
		c = echopb.NewEchoClient(dial("streams.grpc.test"))
		convergeUnary(ctx, c, "g2")
	})

	It("carries unary RPCs with payload and request id intact", func(ctx SpecContext) {
		for range 20 {
			r, err := unary(ctx, c)
			Expect(err).NotTo(HaveOccurred())
			Expect(r.GetPayload()).To(Equal(r.GetRequestId()), "unary echoes the payload it was sent")
			Expect(r.GetFullMethod()).To(Equal("/gatecheck.echo.v1.Echo/Unary"))
		}
	})

	It("carries a server-streaming RPC: every message, in order, from one backend", func(ctx SpecContext) {
		const count = 50
		sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		st, err := c.ServerStream(sctx, &echopb.StreamRequest{Request: &echopb.EchoRequest{Payload: "stream"}, Count: count, IntervalMs: 5})
		Expect(err).NotTo(HaveOccurred())
		var conn string
		for i := range count {
			r, err := st.Recv()
			Expect(err).NotTo(HaveOccurred(), "message %d of %d", i, count)
			Expect(r.GetSequence()).To(BeEquivalentTo(i), "messages arrive in order")
			Expect(r.GetPayload()).To(Equal("stream"))
			if i == 0 {
				conn = r.GetConnectionId()
			}
			Expect(r.GetConnectionId()).To(Equal(conn), "one stream stays on one upstream connection")
		}
		_, err = st.Recv()
		Expect(err).To(MatchError(io.EOF), "the stream ends after %d messages", count)
	})

	It("carries a bidi RPC: each request answered in turn, then a clean close", func(ctx SpecContext) {
		const count = 50
		bctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		b, err := c.Bidi(bctx)
		Expect(err).NotTo(HaveOccurred())
		for i := range count {
			// Ping-pong: the next message is sent only after the previous answer, so the
			// gateway must forward both directions while the stream stays open.
			msg := fmt.Sprintf("ping-%d", i)
			Expect(b.Send(&echopb.EchoRequest{Payload: msg})).To(Succeed())
			r, err := b.Recv()
			Expect(err).NotTo(HaveOccurred(), "answer to message %d", i)
			Expect(r.GetPayload()).To(Equal(msg))
			Expect(backendOf(r)).To(Equal("g2"))
		}
		Expect(b.CloseSend()).To(Succeed())
		_, err = b.Recv()
		Expect(err).To(MatchError(io.EOF))
	})
})
