// Package grpcecho is the gRPC mode of echo-backend: an echo service with unary,
// server-streaming and bidi methods, upstream conformance's GrpcEcho service, reflection and
// the standard health service, over h2c (or TLS).
package grpcecho

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	conformancepb "sigs.k8s.io/gateway-api/conformance/echo-basic/grpcechoserver"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/connid"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

// RequestIDKey is the metadata key carrying the request id.
const RequestIDKey = "x-request-id"

// Options configure a Server; the zero value serves h2c, keeps no records and logs nothing.
type Options struct {
	Identity identity.Identity
	Records  *records.Store
	// RequestLog receives one line per RPC (echo-basic's wording, the full method as path).
	RequestLog io.Writer
	TLS        *tls.Config
	Logger     *slog.Logger
}

// Server is a grpc-go server with the echo services registered.
type Server struct {
	gs     *grpc.Server
	health *health.Server
}

// NewServer builds the server; it registers gatecheck.echo.v1.Echo,
// gateway_api_conformance.echo_basic.grpcecho.GrpcEcho, grpc.health.v1.Health and reflection.
func NewServer(opts Options) *Server {
	o := &observer{id: opts.Identity, records: opts.Records, log: opts.RequestLog}
	sopts := []grpc.ServerOption{
		grpc.StatsHandler(&connTagger{}),
		grpc.ChainUnaryInterceptor(o.unary),
		grpc.ChainStreamInterceptor(o.stream),
	}
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	gs := grpc.NewServer(sopts...)
	echopb.RegisterEchoServer(gs, &echoService{id: opts.Identity})
	conformancepb.RegisterGrpcEchoServer(gs, &conformanceService{id: opts.Identity})
	hs := health.NewServer()
	for _, svc := range []string{"", echopb.Echo_ServiceDesc.ServiceName, conformancepb.GrpcEcho_ServiceDesc.ServiceName} {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return &Server{gs: gs, health: hs}
}

// GRPCServer exposes the underlying server (e.g. to register more services before Serve).
func (s *Server) GRPCServer() *grpc.Server { return s.gs }

// Serve accepts connections on ln until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.gs.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown reports NOT_SERVING on the health service, stops accepting, waits for in-flight
// RPCs and returns; when ctx ends first it cancels what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.gs.GracefulStop(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.gs.Stop()
		<-done
		return ctx.Err()
	}
}

// connTagger gives each HTTP/2 connection an id that every RPC on it can read.
type connTagger struct{ ids connid.Source }

func (c *connTagger) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return connid.WithID(ctx, c.ids.Next())
}
func (c *connTagger) HandleConn(context.Context, stats.ConnStats)                     {}
func (c *connTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connTagger) HandleRPC(context.Context, stats.RPCStats)                       {}

// call is what the observer learnt about an RPC when it arrived.
type call struct {
	fullMethod   string
	authority    string
	requestID    string
	connectionID string
	peer         string
	received     time.Time
	seq          uint64
	md           metadata.MD
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		c = &call{}
	}
	return c
}

// observer records and logs every RPC except health checks and reflection, whose volume
// (kubelet probes) would drown the records that suites look for.
type observer struct {
	id      identity.Identity
	records *records.Store
	mu      sync.Mutex
	log     io.Writer
}

func (o *observer) observe(ctx context.Context, fullMethod, fallbackID string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	c := &call{
		fullMethod:   fullMethod,
		connectionID: connid.FromContext(ctx),
		received:     time.Now(),
		md:           md,
	}
	if v := md.Get(":authority"); len(v) > 0 {
		c.authority = v[0]
	}
	if v := md.Get(RequestIDKey); len(v) > 0 {
		c.requestID = v[0]
	} else {
		c.requestID = fallbackID
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		c.peer = p.Addr.String()
	}
	if strings.HasPrefix(fullMethod, "/grpc.health.") || strings.HasPrefix(fullMethod, "/grpc.reflection.") {
		return context.WithValue(ctx, callKey{}, c)
	}
	c.seq = o.records.Add(records.Record{
		ID:           c.requestID,
		Kind:         records.KindGRPC,
		Method:       "POST",
		Path:         fullMethod,
		URI:          fullMethod,
		Host:         c.authority,
		Proto:        "HTTP/2.0",
		Headers:      map[string][]string(md.Copy()),
		Time:         c.received,
		ConnectionID: c.connectionID,
		RemoteAddr:   c.peer,
	})
	if o.log != nil {
		line := echo.AppendLogLine(make([]byte, 0, 256), echo.LogFields{
			URI: fullMethod, RemoteAddr: c.peer, RequestID: c.requestID, ConnectionID: c.connectionID,
			Seq: c.seq, Method: "POST", Proto: "grpc", Host: c.authority, Backend: o.id.Backend,
		})
		o.mu.Lock()
		_, _ = o.log.Write(line)
		o.mu.Unlock()
	}
	return context.WithValue(ctx, callKey{}, c)
}

func (o *observer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var fallback string
	if r, ok := req.(interface{ GetRequestId() string }); ok {
		fallback = r.GetRequestId()
	}
	return handler(o.observe(ctx, info.FullMethod, fallback), req)
}

func (o *observer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &ctxStream{ServerStream: ss, ctx: o.observe(ss.Context(), info.FullMethod, "")})
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// echoService implements gatecheck.echo.v1.Echo.
type echoService struct {
	echopb.UnimplementedEchoServer
	id identity.Identity
}

func (e *echoService) respond(ctx context.Context, req *echopb.EchoRequest, seq int32) (*echopb.EchoResponse, error) {
	c := callFrom(ctx)
	received := time.Now()
	if seq == 0 {
		received = c.received
	}
	if req.GetDelayMs() > 0 {
		t := time.NewTimer(time.Duration(req.GetDelayMs()) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if code := req.GetFailWithCode(); code != 0 {
		if code < 1 || code > 16 {
			return nil, status.Errorf(codes.InvalidArgument, "field fail_with_code: got %d; want 1-16", code)
		}
		return nil, status.Errorf(codes.Code(code), "failing as asked by fail_with_code=%d", code)
	}
	reqID := c.requestID
	if reqID == "" {
		reqID = req.GetRequestId()
	}
	resp := &echopb.EchoResponse{
		FullMethod: c.fullMethod,
		Authority:  c.authority,
		Metadata:   sortedMetadata(c.md),
		Identity: &echopb.Identity{
			Backend: e.id.Backend, Pod: e.id.Pod, Namespace: e.id.Namespace, Service: e.id.Service, Ingress: e.id.Ingress,
		},
		RequestId:        reqID,
		ConnectionId:     c.connectionID,
		ReceivedUnixNano: received.UnixNano(),
		Payload:          req.GetPayload(),
		Sequence:         seq,
		PeerAddress:      c.peer,
		RecordSeq:        c.seq,
	}
	if info := tlsInfo(ctx); info != nil {
		resp.Tls = &echopb.TLSInfo{
			Version: info.Version, NegotiatedProtocol: info.NegotiatedProtocol, ServerName: info.ServerName,
			CipherSuite: info.CipherSuite, PeerCertificates: info.PeerCertificates,
		}
	}
	return resp, nil
}

func (e *echoService) Unary(ctx context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return e.respond(ctx, req, 0)
}

func (e *echoService) ServerStream(req *echopb.StreamRequest, stream grpc.ServerStreamingServer[echopb.EchoResponse]) error {
	count := req.GetCount()
	if count < 0 {
		return status.Errorf(codes.InvalidArgument, "field count: got %d; want >= 0", count)
	}
	if count == 0 {
		count = 1
	}
	for i := range count {
		if i > 0 && req.GetIntervalMs() > 0 {
			t := time.NewTimer(time.Duration(req.GetIntervalMs()) * time.Millisecond)
			select {
			case <-t.C:
			case <-stream.Context().Done():
				t.Stop()
				return status.FromContextError(stream.Context().Err()).Err()
			}
		}
		resp, err := e.respond(stream.Context(), req.GetRequest(), i)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (e *echoService) Bidi(stream grpc.BidiStreamingServer[echopb.EchoRequest, echopb.EchoResponse]) error {
	for i := int32(0); ; i++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := e.respond(stream.Context(), req, i)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func sortedMetadata(md metadata.MD) []*echopb.MetadataEntry {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*echopb.MetadataEntry, 0, len(keys))
	for _, k := range keys {
		out = append(out, &echopb.MetadataEntry{Key: k, Values: md[k]})
	}
	return out
}

func tlsInfo(ctx context.Context) *echo.TLSInfo {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return echo.NewTLSInfo(&ti.State)
}

// conformanceService answers upstream conformance's GrpcEcho as echo-basic does, so this
// backend can stand in for echo-basic in gRPC tests.
type conformanceService struct {
	conformancepb.UnimplementedGrpcEchoServer
	id identity.Identity
}

func (s *conformanceService) doEcho(ctx context.Context) (*conformancepb.EchoResponse, error) {
	c := callFrom(ctx)
	a := &conformancepb.Assertions{
		FullyQualifiedMethod: c.fullMethod,
		Authority:            c.authority,
		Context: &conformancepb.Context{
			Namespace: s.id.Namespace, Ingress: s.id.Ingress, ServiceName: s.id.Service, Pod: s.id.Pod,
		},
	}
	for k, vs := range c.md {
		for _, v := range vs {
			a.Headers = append(a.Headers, &conformancepb.Header{Key: k, Value: v})
		}
	}
	if info := tlsInfo(ctx); info != nil {
		a.TlsAssertions = &conformancepb.TLSAssertions{
			Version: info.Version, NegotiatedProtocol: info.NegotiatedProtocol, ServerName: info.ServerName,
			CipherSuite: info.CipherSuite, PeerCertificates: info.PeerCertificates,
		}
	}
	return &conformancepb.EchoResponse{Assertions: a}, nil
}

func (s *conformanceService) Echo(ctx context.Context, _ *conformancepb.EchoRequest) (*conformancepb.EchoResponse, error) {
	return s.doEcho(ctx)
}

func (s *conformanceService) EchoTwo(ctx context.Context, _ *conformancepb.EchoRequest) (*conformancepb.EchoResponse, error) {
	return s.doEcho(ctx)
}
