package grpc

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/verdict"
)

// TestSampleUnaryLocal runs the RPC sampler against a real gRPC echo on loopback: one
// backend answers every call, so declaring it alone passes and declaring 50/50 fails.
func TestSampleUnaryLocal(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcecho.NewServer(grpcecho.Options{Identity: identity.Identity{Backend: "g1"}})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c := echopb.NewEchoClient(cc)

	cases := []struct {
		declared string
		want     verdict.Decision
	}{
		{"g1=1,g2=0", verdict.Pass},
		{"g1=50,g2=50", verdict.Fail},
	}
	for _, tc := range cases {
		bs, err := verdict.ParseBackends(tc.declared)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := verdict.NewSequential(bs, verdict.Config{MaxRequests: 300})
		if err != nil {
			t.Fatal(err)
		}
		v := sampleUnary(context.Background(), c, seq, 300, 4)
		if v.Decision != tc.want {
			t.Errorf("declared %s: decision %s (%s); want %s", tc.declared, v.Decision, v.Message, tc.want)
		}
	}
}
