package proxy

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// startGRPCBackend serves the gRPC health service on loopback; service "who" reports st, so a
// client can tell which backend answered.
func startGRPCBackend(t testing.TB, st healthpb.HealthCheckResponse_ServingStatus) (*health.Server, ir.Backend) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("who", st)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return hs, ir.Backend{Name: "test/grpc-" + st.String(), Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
}

func TestGRPCThroughProxy(t *testing.T) {
	t.Parallel()
	hs1, g1 := startGRPCBackend(t, healthpb.HealthCheckResponse_SERVING)
	_, g2 := startGRPCBackend(t, healthpb.HealthCheckResponse_NOT_SERVING)
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP,
		GRPCRoutes: []ir.GRPCRoute{{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "grpc", Hostnames: []string{"grpc.example"}}, Rules: []ir.GRPCRule{
			{Index: 0, Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchExact, Service: "grpc.health.v1.Health", Method: "Check"},
				Headers: []ir.HeaderMatch{{Name: "x-route", Value: "two"}}}}, Backends: []ir.Backend{g2}},
			{Index: 1, Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchRegularExpression, Service: `grpc\.health\.v1\.Heal.*`}}}, Backends: []ir.Backend{g1}},
		}}}}))
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(int(port)), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("grpc.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("unary by method", func(t *testing.T) {
		res, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "who"})
		if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check: got %v, %v; want SERVING from backend 1", res.GetStatus(), err)
		}
	})
	t.Run("unary by header", func(t *testing.T) {
		res, err := client.Check(metadata.AppendToOutgoingContext(ctx, "x-route", "two"), &healthpb.HealthCheckRequest{Service: "who"})
		if err != nil || res.Status != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check with header: got %v, %v; want NOT_SERVING from backend 2", res.GetStatus(), err)
		}
	})
	t.Run("backend status in trailers", func(t *testing.T) {
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("Check unknown service: got %v; want NotFound carried in trailers", err)
		}
	})
	t.Run("no route is UNIMPLEMENTED", func(t *testing.T) {
		before := p.Metrics().Requests("", "", 404)
		err := conn.Invoke(ctx, "/other.Service/Method", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("unrouted method: got %v; want Unimplemented", err)
		}
		if after := p.Metrics().Requests("", "", 404); after != before+1 {
			t.Errorf("proxy no-route count: got %d; want %d (the proxy, not a backend, must answer)", after, before+1)
		}
	})
	t.Run("server streaming flushes each message", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		stream, err := client.Watch(wctx, &healthpb.HealthCheckRequest{Service: "who"})
		if err != nil {
			t.Fatal(err)
		}
		first, err := stream.Recv()
		if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first Watch message: got %v, %v; want SERVING", first.GetStatus(), err)
		}
		start := time.Now()
		hs1.SetServingStatus("who", healthpb.HealthCheckResponse_NOT_SERVING)
		defer hs1.SetServingStatus("who", healthpb.HealthCheckResponse_SERVING)
		second, err := stream.Recv()
		if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("second Watch message: got %v, %v; want NOT_SERVING", second.GetStatus(), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("second message took %v; want it flushed at once (< 1s)", d)
		}
	})
}
