package proxy

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// startUDPBackend answers every datagram with name + ":" + the datagram.
func startUDPBackend(t testing.TB, name string) ir.Backend {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP([]byte(name+":"+string(buf[:n])), from)
		}
	}()
	return ir.Backend{Name: "test/" + name, Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(c.LocalAddr().(*net.UDPAddr).Port)}}}
}

// udpExchange sends msg on c and returns the answer's backend name (before the colon).
func udpExchange(t testing.TB, c *net.UDPConn, msg string) string {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			continue // loopback UDP loses nothing in practice; retry anyway
		}
		name, rest, ok := strings.Cut(string(buf[:n]), ":")
		if !ok || rest != msg {
			t.Fatalf("answer %q to %q", buf[:n], msg)
		}
		return name
	}
	t.Fatalf("no answer to %q after 5 tries", msg)
	return ""
}

func dialUDP(t testing.TB, port int32) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPRouting(t *testing.T) {
	t.Parallel()
	a, b := startUDPBackend(t, "a"), startUDPBackend(t, "b")
	a.Weight, b.Weight = 3, 1
	port := freePort(t)
	older := time.Unix(100, 0)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "udp", Port: port, Protocol: ir.ProtocolUDP, UDPIdleTimeout: ir.Duration(400 * time.Millisecond), UDPRoutes: []ir.UDPRoute{
		{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "newer", CreationTimestamp: older.Add(time.Hour)}, Backends: []ir.Backend{{Name: "test/wrong", Weight: 1}}},
		{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "older", CreationTimestamp: older}, Backends: []ir.Backend{a, b}},
	}}))

	t.Run("a flow sticks to its backend", func(t *testing.T) {
		c := dialUDP(t, port)
		first := udpExchange(t, c, "0")
		for i := 1; i < 50; i++ {
			if got := udpExchange(t, c, strconv.Itoa(i)); got != first {
				t.Fatalf("datagram %d of one flow went to %s, the first to %s", i, got, first)
			}
		}
	})

	// 300 flows at weights 3:1: the count of "a" is binomial(300, 0.75), sd 7.5; 6 sd allowed,
	// so a correct split fails with probability below 2e-9.
	t.Run("weighted per flow", func(t *testing.T) {
		const n = 300
		countA := 0
		for i := 0; i < n; i++ {
			c := dialUDP(t, port)
			if udpExchange(t, c, "w"+strconv.Itoa(i)) == "a" {
				countA++
			}
			c.Close()
		}
		if want, sd := 0.75*n, math.Sqrt(n*0.75*0.25); math.Abs(float64(countA)-want) > 6*sd {
			t.Errorf("backend a got %d of %d flows; want %.0f ± %.0f", countA, n, want, 6*sd)
		}
	})

	t.Run("an idle flow expires and may move", func(t *testing.T) {
		// 40 flows, idle past the 400 ms timeout: each picks again (a with 3/4), so all 40
		// re-picks equal their first pick with probability (0.75^2+0.25^2)^40 = 0.625^40 < 1e-8.
		conns := make([]*net.UDPConn, 40)
		first := make([]string, len(conns))
		for i := range conns {
			conns[i] = dialUDP(t, port)
			first[i] = udpExchange(t, conns[i], "x")
		}
		before := p.Metrics().UDP("test/older", "test/a", "flow_expired") + p.Metrics().UDP("test/older", "test/b", "flow_expired")
		time.Sleep(1200 * time.Millisecond)
		after := p.Metrics().UDP("test/older", "test/a", "flow_expired") + p.Metrics().UDP("test/older", "test/b", "flow_expired")
		if after-before < 40 {
			t.Fatalf("%d flows expired after 1.2 s idle; want at least 40", after-before)
		}
		moved := 0
		for i, c := range conns {
			if udpExchange(t, c, "y") != first[i] {
				moved++
			}
		}
		if moved == 0 {
			t.Errorf("no flow of 40 changed backend after expiring; expiry does not re-pick")
		}
	})

	t.Run("within the timeout a flow keeps its backend", func(t *testing.T) {
		c := dialUDP(t, port)
		first := udpExchange(t, c, "s")
		for i := 0; i < 8; i++ {
			time.Sleep(150 * time.Millisecond) // 1.2 s in all, never 400 ms idle
			if got := udpExchange(t, c, fmt.Sprint("s", i)); got != first {
				t.Fatalf("after %d gaps of 150 ms the flow moved from %s to %s", i+1, first, got)
			}
		}
	})
}

func TestUDPNoEndpointsDrops(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "udp", Port: port, Protocol: ir.ProtocolUDP, UDPRoutes: []ir.UDPRoute{
		{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Backends: []ir.Backend{{Name: "test/none", Weight: 1, Invalid: "service not found"}}},
	}}))
	c := dialUDP(t, port)
	c.Write([]byte("lost"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); err == nil {
		t.Fatalf("got a %d-byte answer from a backend with no endpoints", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for p.Metrics().UDP("test/r", "test/none", "no_endpoints") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no no_endpoints count for the dropped datagram")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUDPListenerRemovedClosesPort(t *testing.T) {
	t.Parallel()
	a := startUDPBackend(t, "a")
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "udp", Port: port, Protocol: ir.ProtocolUDP, UDPRoutes: []ir.UDPRoute{
		{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Backends: []ir.Backend{a}},
	}}))
	c := dialUDP(t, port)
	udpExchange(t, c, "hi")
	if p.UDPFlows(port) != 1 {
		t.Fatalf("flows = %d; want 1", p.UDPFlows(port))
	}
	if err := p.Apply(snapshot(2, ir.Listener{Name: "tcp", Port: port, Protocol: ir.ProtocolTCP})); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if p.UDPFlows(port) != 0 {
		t.Fatalf("flows after the UDP listener became TCP = %d; want 0", p.UDPFlows(port))
	}
	// The port is TCP now, and UDP to it gets nothing.
	c.Write([]byte("late"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Read(make([]byte, 100)); err == nil {
		t.Fatal("a datagram to a closed UDP listener was answered")
	}
}
