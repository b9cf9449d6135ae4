package probe

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// tcpSplitter is a per-connection weighted TCP splitter in front of real echo backends: the
// unit a TCPRoute data plane is, so the probe is tested end to end on loopback.
func tcpSplitter(t *testing.T, weights map[string]int) string {
	t.Helper()
	var addrs []string
	var cum []int
	total := 0
	for name, w := range weights {
		ln := listen(t)
		srv := tcpecho.NewServer(tcpecho.Options{Identity: identity.Identity{Backend: name}})
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		total += w
		addrs, cum = append(addrs, ln.Addr().String()), append(cum, total)
	}
	front := listen(t)
	t.Cleanup(func() { front.Close() })
	go func() {
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			r := rand.IntN(total)
			i := 0
			for cum[i] <= r {
				i++
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", addrs[i])
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c); b.Close() }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return front.Addr().String()
}

func TestTCPProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		served map[string]int
		expect string
		want   Decision
		text   string
	}{
		{"correct 70/30", map[string]int{"t1": 70, "t2": 30}, "t1=70,t2=30", Pass, "verdict: PASS: consistent with t1=70%, t2=30% per connection"},
		{"skewed 80/20 declared 70/30", map[string]int{"t1": 80, "t2": 20}, "t1=70,t2=30", Fail, "backend t2: declared 30%, observed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tcpSplitter(t, tc.served)
			backends, err := ParseBackends(tc.expect)
			if err != nil {
				t.Fatal(err)
			}
			p := &BackendsProbe{Kind: "tcp", Target: addr, Backends: backends, Config: Config{Alpha: DefaultAlpha, Power: DefaultPower, Tolerance: 0.03},
				Probe: TCPGreeting(addr, 5*time.Second)}
			rep, err := p.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict.Decision != tc.want {
				t.Fatalf("decision %s; want %s: %s", rep.Verdict.Decision, tc.want, rep.Verdict.Message)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.text) || !strings.Contains(b.String(), "probe tcp "+addr) {
				t.Fatalf("report:\n%s\nwant it to contain %q", b.String(), tc.text)
			}
		})
	}
}

// The grpc probe against one real gRPC echo: declaring it the only backend passes; declaring a
// second backend that never answers fails, and an unreachable target fails the verdict.
func TestGRPCProbe(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	srv := grpcecho.NewServer(grpcecho.Options{Identity: identity.Identity{Backend: "g1"}})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	for _, tc := range []struct {
		expect string
		want   Decision
	}{{"g1=100", Pass}, {"g1=50,g2=50", Fail}} {
		call, closeConn, err := GRPCUnary(ln.Addr().String(), "grpc.test", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		backends, _ := ParseBackends(tc.expect)
		p := &BackendsProbe{Kind: "grpc", Target: ln.Addr().String(), Backends: backends, Config: Config{Alpha: DefaultAlpha, Power: DefaultPower, Tolerance: DefaultTolerance, MaxRequests: 2000}, Probe: call}
		rep, err := p.Run(context.Background())
		closeConn()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict.Decision != tc.want {
			t.Errorf("expect %s: decision %s; want %s: %s", tc.expect, rep.Verdict.Decision, tc.want, rep.Verdict.Message)
		}
	}
	dead := listen(t)
	addr := dead.Addr().String()
	dead.Close()
	p := &BackendsProbe{Kind: "tcp", Target: addr, Backends: []Backend{{Name: "t1", Weight: 1}}, Config: Config{Alpha: DefaultAlpha, Power: DefaultPower, Tolerance: DefaultTolerance},
		Probe: TCPGreeting(addr, time.Second)}
	rep, _ := p.Run(context.Background())
	if rep.Verdict.Decision != Fail || !strings.Contains(rep.Verdict.Message, "connection failed") {
		t.Errorf("unreachable target: decision %s, message %q; want a failed verdict naming the failed connection", rep.Verdict.Decision, rep.Verdict.Message)
	}
}
