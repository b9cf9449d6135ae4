package grpcecho_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	conformancepb "sigs.k8s.io/gateway-api/conformance/echo-basic/grpcechoserver"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

var testID = identity.Identity{Backend: "grpc-v1", Pod: "pod-g", Namespace: "ns-g", Service: "svc-g"}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	conn  *grpc.ClientConn
	srv   *grpcecho.Server
	store *records.Store
	log   *lockedBuilder
}

func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: records.NewStore(testID, 50), log: &lockedBuilder{}}
	f.srv = grpcecho.NewServer(grpcecho.Options{Identity: testID, Records: f.store, RequestLog: f.log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(ln) }()
	f.conn, err = grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() {
		f.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

func ctxWithID(t *testing.T, id string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "x-request-id", id, "x-custom", "c1")
}

func mdValue(r *echopb.EchoResponse, key string) string {
	for _, e := range r.GetMetadata() {
		if e.GetKey() == key && len(e.GetValues()) > 0 {
			return e.GetValues()[0]
		}
	}
	return ""
}

func TestUnary(t *testing.T) {
	t.Parallel()
	f := start(t)
	client := echopb.NewEchoClient(f.conn)
	resp, err := client.Unary(ctxWithID(t, "u1"), &echopb.EchoRequest{Payload: "hi"})
	if err != nil {
		t.Fatalf("Unary: %v", err)
	}
	if got, want := resp.GetFullMethod(), "/gatecheck.echo.v1.Echo/Unary"; got != want {
		t.Errorf("full method: got %q; want %q", got, want)
	}
	if got, want := resp.GetAuthority(), f.conn.Target(); got != want {
		t.Errorf("authority: got %q; want %q", got, want)
	}
	if resp.GetRequestId() != "u1" || resp.GetPayload() != "hi" || mdValue(resp, "x-custom") != "c1" {
		t.Errorf("echo: got id %q payload %q x-custom %q; want u1, hi, c1", resp.GetRequestId(), resp.GetPayload(), mdValue(resp, "x-custom"))
	}
	if id := resp.GetIdentity(); id.GetBackend() != "grpc-v1" || id.GetPod() != "pod-g" || id.GetNamespace() != "ns-g" || id.GetService() != "svc-g" {
		t.Errorf("identity: got %v; want %+v", id, testID)
	}
	if resp.GetConnectionId() == "" || resp.GetReceivedUnixNano() == 0 || resp.GetRecordSeq() == 0 {
		t.Errorf("connection id %q, received %d, record seq %d: want all set", resp.GetConnectionId(), resp.GetReceivedUnixNano(), resp.GetRecordSeq())
	}
	again, err := client.Unary(ctxWithID(t, "u2"), &echopb.EchoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetConnectionId() != resp.GetConnectionId() {
		t.Errorf("connection id of a second call on the same ClientConn: got %q; want %q", again.GetConnectionId(), resp.GetConnectionId())
	}
	recs := f.store.Find(records.Query{ID: "u1"}).Records
	if len(recs) != 1 || recs[0].Path != "/gatecheck.echo.v1.Echo/Unary" || recs[0].Kind != records.KindGRPC {
		t.Errorf("records for u1: got %+v; want one grpc record for /gatecheck.echo.v1.Echo/Unary", recs)
	}
	if !strings.Contains(f.log.String(), `Echoing back request made to /gatecheck.echo.v1.Echo/Unary to client`) || !strings.Contains(f.log.String(), `request_id=u1 `) {
		t.Errorf("log: got %q; want a line for Unary with request_id=u1", f.log.String())
	}

	_, err = client.Unary(ctxWithID(t, "u3"), &echopb.EchoRequest{FailWithCode: int32(codes.Unavailable)})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("fail_with_code=14: got code %v; want Unavailable", got)
	}
}

func TestServerStream(t *testing.T) {
	t.Parallel()
	f := start(t)
	stream, err := echopb.NewEchoClient(f.conn).ServerStream(ctxWithID(t, "s1"), &echopb.StreamRequest{
		Request: &echopb.EchoRequest{Payload: "p"}, Count: 3, IntervalMs: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int32
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if resp.GetFullMethod() != "/gatecheck.echo.v1.Echo/ServerStream" || resp.GetRequestId() != "s1" || resp.GetPayload() != "p" {
			t.Errorf("stream response: got method %q id %q payload %q", resp.GetFullMethod(), resp.GetRequestId(), resp.GetPayload())
		}
		seqs = append(seqs, resp.GetSequence())
	}
	if len(seqs) != 3 || seqs[0] != 0 || seqs[2] != 2 {
		t.Errorf("sequences: got %v; want [0 1 2]", seqs)
	}
}

func TestBidi(t *testing.T) {
	t.Parallel()
	f := start(t)
	stream, err := echopb.NewEchoClient(f.conn).Bidi(ctxWithID(t, "b1"))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"one", "two", "three"} {
		if err := stream.Send(&echopb.EchoRequest{Payload: p}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if resp.GetPayload() != p || resp.GetSequence() != int32(i) || resp.GetFullMethod() != "/gatecheck.echo.v1.Echo/Bidi" {
			t.Errorf("bidi response %d: got payload %q seq %d method %q; want %q, %d, Bidi", i, resp.GetPayload(), resp.GetSequence(), resp.GetFullMethod(), p, i)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after CloseSend: got %v; want io.EOF", err)
	}
}

func TestConformanceGrpcEcho(t *testing.T) {
	t.Parallel()
	f := start(t)
	client := conformancepb.NewGrpcEchoClient(f.conn)
	resp, err := client.Echo(ctxWithID(t, "c1"), &conformancepb.EchoRequest{})
	if err != nil {
		t.Fatalf("GrpcEcho/Echo: %v", err)
	}
	a := resp.GetAssertions()
	if got, want := a.GetFullyQualifiedMethod(), "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo"; got != want {
		t.Errorf("fully qualified method: got %q; want %q", got, want)
	}
	if a.GetAuthority() != f.conn.Target() || a.GetContext().GetPod() != "pod-g" || a.GetContext().GetServiceName() != "svc-g" {
		t.Errorf("assertions: got authority %q context %v; want %q and pod-g/svc-g", a.GetAuthority(), a.GetContext(), f.conn.Target())
	}
	var sawHeader bool
	for _, h := range a.GetHeaders() {
		sawHeader = sawHeader || (h.GetKey() == "x-custom" && h.GetValue() == "c1")
	}
	if !sawHeader {
		t.Errorf("headers: got %v; want x-custom: c1", a.GetHeaders())
	}
	if _, err := client.EchoThree(ctxWithID(t, "c3"), &conformancepb.EchoRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("EchoThree: got %v; want Unimplemented (as upstream)", err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	f := start(t)
	ctx := ctxWithID(t, "h")
	for _, svc := range []string{"", "gatecheck.echo.v1.Echo", "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"} {
		resp, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: got %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection Recv: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"gatecheck.echo.v1.Echo", "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("reflection services: got %v; want %s among them", names, want)
		}
	}
	if st := f.store.Stats(); st.ByKind[records.KindGRPC] != 0 {
		t.Errorf("records after health and reflection calls only: got %d; want 0 (they are not recorded)", st.Total)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	t.Parallel()
	f := start(t)
	errc := make(chan error, 1)
	go func() {
		_, err := echopb.NewEchoClient(f.conn).Unary(ctxWithID(t, "slow"), &echopb.EchoRequest{DelayMs: 300})
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.store.Stats().Total == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("in-flight call during Shutdown: got %v; want success", err)
	}
	if waited := time.Since(began); waited < 150*time.Millisecond {
		t.Errorf("Shutdown returned after %v; want it to wait for the 300ms call", waited)
	}
}
