package tcp

import (
	"context"
	"net"
	"testing"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/verdict"
)

// TestSampleConnectionsLocal runs the per-connection sampler against a real TCP echo on
// loopback standing in for the Gateway: one backend answers every connection, so declaring
// it alone passes and declaring a 50/50 split fails. It sets the suite's gw, so it is not
// parallel.
func TestSampleConnectionsLocal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := tcpecho.NewServer(tcpecho.Options{Identity: identity.Identity{Backend: "t1"}})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	old := gw
	gw = gwtest.Direct("127.0.0.1")
	t.Cleanup(func() { gw = old })
	port := ln.Addr().(*net.TCPAddr).Port

	cases := []struct {
		declared string
		want     verdict.Decision
	}{
		{"t1=1,t2=0", verdict.Pass},
		{"t1=50,t2=50", verdict.Fail},
	}
	for _, c := range cases {
		bs, err := verdict.ParseBackends(c.declared)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := verdict.NewSequential(bs, verdict.Config{MaxRequests: 200})
		if err != nil {
			t.Fatal(err)
		}
		v := sampleConnections(context.Background(), port, seq, 200, 4)
		if v.Decision != c.want {
			t.Errorf("declared %s: decision %s (%s); want %s", c.declared, v.Decision, v.Message, c.want)
		}
		if c.want == verdict.Pass && v.N != 200 {
			t.Errorf("declared %s: n=%d; want the cap, 200 (a zero-weight check runs to the cap)", c.declared, v.N)
		}
	}

	// A refused connection fails the verdict instead of being skipped.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	seq, _ := verdict.NewSequential([]verdict.Backend{{Name: "t1", Weight: 1}}, verdict.Config{MaxRequests: 50})
	if v := sampleConnections(context.Background(), deadPort, seq, 50, 2); v.Decision != verdict.Fail {
		t.Errorf("refused connections: decision %s (%s); want fail", v.Decision, v.Message)
	}
}
