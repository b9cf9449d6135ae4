package traffic

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/udpecho"
)

func startUDPEcho(t *testing.T, backend string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := udpecho.NewServer(udpecho.Options{Identity: identity.Identity{Backend: backend}})
	go s.Serve(udpecho.NewListener(pc))
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return pc.LocalAddr().String()
}

func TestUDPFlow(t *testing.T) {
	addr := startUDPEcho(t, "u1")
	stats := NewUDPStats()
	r, err := UDPFlow(context.Background(), addr, "f", UDPFlowOptions{Datagrams: 200, Gap: 100 * time.Microsecond, Wait: time.Second, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	stats.Add(r)
	if r.Backend != "u1" || r.Sent != 200 || r.Lost() != 0 || r.Split() || len(r.RTTs) != 200 {
		t.Errorf("flow: backend %q sent %d lost %d split %v rtts %d; want u1, 200, 0, false, 200", r.Backend, r.Sent, r.Lost(), r.Split(), len(r.RTTs))
	}
	if !strings.Contains(stats.Summary(), "0 lost") {
		t.Errorf("summary %q", stats.Summary())
	}
}

func TestUDPFlowLossAndProbeErrors(t *testing.T) {
	// A port nothing listens on: every datagram is lost, and the probe says so.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := pc.LocalAddr().String()
	pc.Close()
	stats := NewUDPStats()
	_, err := UDPFlowBackend(addr, "x", UDPFlowOptions{Datagrams: 3, Wait: 200 * time.Millisecond}, stats)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "none of its 3 datagrams was answered") {
		t.Fatalf("probe to a dead port: %v", err)
	}
	if stats.Lost() != 3 || stats.LossRate() != 1 {
		t.Errorf("lost %d rate %g; want 3, 1", stats.Lost(), stats.LossRate())
	}
}

func TestUDPStickyFlow(t *testing.T) {
	addr := startUDPEcho(t, "u7")
	f, err := DialUDPFlow(context.Background(), addr, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 3; i++ {
		if b, err := f.Exchange(); err != nil || b != "u7" {
			t.Fatalf("exchange %d: %q, %v", i, b, err)
		}
	}
}
