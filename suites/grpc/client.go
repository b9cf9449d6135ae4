package grpc

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

// rpcTimeout bounds each RPC.
const rpcTimeout = 10 * time.Second

// dial connects to the Gateway's listener with host as the :authority (the route's
// hostname); the connection is closed at the end of the spec.
func dial(host string) *grpc.ClientConn {
	GinkgoHelper()
	cc, err := grpc.NewClient("passthrough:///"+gw.Addr(80),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(host))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cc.Close)
	return cc
}

var reqSeq atomic.Int64

// unary makes one Unary call with a fresh request id and extra metadata (key, value, ...).
func unary(ctx context.Context, c echopb.EchoClient, md ...string) (*echopb.EchoResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	id := fmt.Sprintf("gc-grpc-%d-%d", GinkgoParallelProcess(), reqSeq.Add(1))
	ctx = metadata.AppendToOutgoingContext(ctx, append([]string{"x-request-id", id}, md...)...)
	resp, err := c.Unary(ctx, &echopb.EchoRequest{Payload: id})
	if err != nil {
		return nil, err
	}
	if resp.GetRequestId() != id {
		return resp, fmt.Errorf("response request id %q; want %q (a response to another call?)", resp.GetRequestId(), id)
	}
	return resp, nil
}

// backendOf names the backend of a response.
func backendOf(r *echopb.EchoResponse) string { return r.GetIdentity().GetBackend() }

// convergeUnary waits until gwtest.ConvergeInARow Unary calls in a row are answered by want.
func convergeUnary(ctx context.Context, c echopb.EchoClient, want string, md ...string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for range gwtest.ConvergeInARow {
			r, err := unary(ctx, c, md...)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(backendOf(r)).To(Equal(want))
		}
	}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).WithPolling(200*time.Millisecond).Should(Succeed(),
		"GRPCRoute never served Unary from %s", want)
}

// sampleUnary feeds Unary calls from concurrency workers into a sequential share test
// until it decides or maxRequests calls were counted. Any failed call fails the verdict: a
// correct split answers every RPC.
func sampleUnary(ctx context.Context, c echopb.EchoClient, seq *verdict.Sequential, maxRequests, concurrency int) verdict.Verdict {
	return traffic.SampleBackends(ctx, seq, maxRequests, concurrency, "RPC",
		func(ctx context.Context) (string, error) {
			r, err := unary(ctx, c)
			return backendOf(r), err
		},
		func(err error) string { return status.Convert(err).String() })
}
