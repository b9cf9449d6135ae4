package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

// BackendsProbe checks a split that is not per HTTP request: per TCP connection (TCPRoute) or
// per gRPC call (GRPCRoute). Each probe names the backend that answered; the verdict is the
// same sequential test the weights probe uses.
type BackendsProbe struct {
	// Kind is "tcp" or "grpc", for the report.
	Kind        string
	Target      string
	Backends    []verdict.Backend
	Config      verdict.Config
	Concurrency int
	// Probe makes one connection or call and returns the backend that answered.
	Probe func(ctx context.Context) (string, error)
}

// BackendsReport is what a tcp or grpc probe found.
type BackendsReport struct {
	Kind    string          `json:"kind"`
	Target  string          `json:"target"`
	Verdict verdict.Verdict `json:"verdict"`
	Elapsed time.Duration   `json:"-"`
	Seconds float64         `json:"seconds"`
}

// Run samples until the sequential test decides or the cap is reached. A failed connection or
// call fails the verdict (a correct split answers every one).
func (p *BackendsProbe) Run(ctx context.Context) (BackendsReport, error) {
	rep := BackendsReport{Kind: p.Kind, Target: p.Target}
	seq, err := verdict.NewSequential(p.Backends, p.Config)
	if err != nil {
		return rep, fmt.Errorf("%s probe: %w", p.Kind, err)
	}
	cap := p.Config.MaxRequests
	if cap == 0 {
		cap = verdict.DefaultMaxRequests
	}
	conc := p.Concurrency
	if conc <= 0 {
		conc = 8
	}
	what := map[string]string{"tcp": "connection", "grpc": "RPC"}[p.Kind]
	start := time.Now()
	rep.Verdict = traffic.SampleBackends(ctx, seq, cap, conc, what, p.Probe, func(err error) string {
		if s, ok := status.FromError(err); ok {
			return s.String()
		}
		return err.Error()
	})
	rep.Elapsed = time.Since(start)
	rep.Seconds = rep.Elapsed.Seconds()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// WriteText renders the report for a person.
func (r BackendsReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "probe %s %s, %s\n", r.Kind, r.Target, r.Elapsed.Round(time.Millisecond))
	if err := (WeightsReport{URL: r.Target, Verdict: r.Verdict}).writeVerdict(&b); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TCPGreeting connects to addr and returns the backend named in the echo backend's TCP
// greeting line (echo-backend --mode=tcp).
func TCPGreeting(addr string, timeout time.Duration) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		g, err := tcpecho.ReadGreeting(bufio.NewReader(c))
		if err != nil {
			return "", fmt.Errorf("read greeting from %s: %w", addr, err)
		}
		if g.Backend == "" {
			return "", errors.New("greeting names no backend (is the target gatecheck's echo-backend in tcp mode?)")
		}
		return g.Backend, nil
	}
}

// GRPCUnary returns a probe that calls gatecheck.echo.v1.Echo/Unary over one h2c connection
// (calls are split per request, as GRPCRoute does) and returns the backend that answered, and
// a close function for the connection.
func GRPCUnary(addr, authority string, timeout time.Duration) (func(context.Context) (string, error), func() error, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc client for %s: %w", addr, err)
	}
	client := echopb.NewEchoClient(cc)
	var seq atomic.Int64
	return func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		id := fmt.Sprintf("gatecheck-probe-%d", seq.Add(1))
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", id)
		r, err := client.Unary(ctx, &echopb.EchoRequest{Payload: id})
		if err != nil {
			return "", err
		}
		return r.GetIdentity().GetBackend(), nil
	}, cc.Close, nil
}
