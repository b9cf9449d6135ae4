package traffic

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
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

// stallingRelay forwards datagrams between one client and addr through a socket with a small
// receive buffer, and stops reading for stall once it has forwarded after datagrams: a
// Gateway's process descheduled on a busy machine.
func stallingRelay(t *testing.T, addr string, after int, stall time.Duration) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	up, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); up.Close() })
	var client atomic.Pointer[net.UDPAddr]
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := up.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if c := client.Load(); c != nil {
				_, _ = pc.WriteToUDP(buf[:n], c)
			}
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for i := 0; ; i++ {
			if i == after {
				time.Sleep(stall)
			}
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			client.Store(from)
			_, _ = up.Write(buf[:n])
		}
	}()
	return pc.LocalAddr().String()
}

// A stall on the path overflows its buffer when the flow keeps sending at its pace; with a
// Window the flow waits for the path instead, and loses nothing a correct path would not.
func TestUDPFlowWindowRidesOutAStall(t *testing.T) {
	echo := startUDPEcho(t, "u1")
	opts := UDPFlowOptions{Datagrams: 300, Gap: time.Millisecond, Wait: time.Second, Size: 256}
	paced, err := UDPFlow(context.Background(), stallingRelay(t, echo, 20, 300*time.Millisecond), "paced", opts)
	if err != nil {
		t.Fatal(err)
	}
	if paced.Lost() == 0 {
		t.Fatalf("paced flow through a relay that stalled 300 ms lost nothing: the stall does not overflow its buffer, so this test shows nothing")
	}
	opts.Window, opts.Expire = 3, time.Second
	start := time.Now()
	windowed, err := UDPFlow(context.Background(), stallingRelay(t, echo, 20, 300*time.Millisecond), "windowed", opts)
	if err != nil {
		t.Fatal(err)
	}
	if windowed.Lost() != 0 || windowed.Sent != 300 || windowed.Reordered != 0 {
		t.Errorf("windowed flow: sent %d, lost %d, reordered %d; want 300, 0, 0 (the paced one lost %d)", windowed.Sent, windowed.Lost(), windowed.Reordered, paced.Lost())
	}
	t.Logf("300 datagrams, relay stalled 300 ms: paced flow lost %d; windowed flow lost %d in %v", paced.Lost(), windowed.Lost(), time.Since(start).Round(time.Millisecond))
}

// A path that answers nothing: the Window slides as datagrams expire, every datagram is sent
// and counted lost, in about Datagrams/Window x Expire.
func TestUDPFlowWindowDeadPath(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := pc.LocalAddr().String()
	pc.Close()
	start := time.Now()
	r, err := UDPFlow(context.Background(), addr, "dead", UDPFlowOptions{Datagrams: 40, Gap: time.Millisecond, Wait: 100 * time.Millisecond, Window: 8, Expire: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if r.Sent != 40 || r.Lost() != 40 {
		t.Errorf("dead path: sent %d lost %d; want 40, 40", r.Sent, r.Lost())
	}
	if took < 4*50*time.Millisecond {
		t.Errorf("dead path took %v; want >= 200ms (4 full windows waiting to expire): the Window did not hold", took)
	}
}
