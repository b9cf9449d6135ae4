package proxy

import (
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// startTCPBackend reads each connection to EOF, then answers name + ":" + what it read and
// closes: a client only gets the answer if its half-close reached the backend, and only sees
// EOF if the backend's close came back through the proxy.
func startTCPBackend(t testing.TB, name string) ir.Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				io.WriteString(c, name+":"+string(b))
			}()
		}
	}()
	return ir.Backend{Name: "test/" + name, Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
}

func tcpRoundTrip(t testing.TB, port int32, msg string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(port)), 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestTCPRouting(t *testing.T) {
	t.Parallel()
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	a.Weight, b.Weight = 3, 1
	port := freePort(t)
	older := time.Unix(100, 0)
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "tcp", Port: port, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{
		{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "newer", CreationTimestamp: older.Add(time.Hour)}, Backends: []ir.Backend{{Name: "test/wrong", Weight: 1}}},
		{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "older", CreationTimestamp: older}, Backends: []ir.Backend{a, b}},
	}}))
	t.Run("half-close both ways", func(t *testing.T) {
		got := tcpRoundTrip(t, port, "hello")
		if got != "a:hello" && got != "b:hello" {
			t.Errorf("got %q; want a:hello or b:hello", got)
		}
	})
	// 300 connections at weights 3:1: the count of "a" is binomial(300, 0.75), sd 7.5; the
	// test allows 6 sd, so a correct split fails it with probability below 2e-9.
	t.Run("weighted per connection", func(t *testing.T) {
		const n = 300
		countA := 0
		for i := range n {
			got := tcpRoundTrip(t, port, strconv.Itoa(i))
			if strings.HasPrefix(got, "a:") {
				countA++
			} else if !strings.HasPrefix(got, "b:") {
				t.Fatalf("connection %d: got %q; want an answer from a or b", i, got)
			}
		}
		sd := math.Sqrt(n * 0.75 * 0.25)
		if math.Abs(float64(countA)-n*0.75) > 6*sd {
			t.Errorf("connections to a: got %d of %d; want %.0f +- %.0f", countA, n, n*0.75, 6*sd)
		}
	})
}

// startTCPEcho echoes whatever it reads as it reads it and never closes a connection by
// itself, not even after the client's half-close.
func startTCPEcho(t testing.TB) ir.Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				time.Sleep(time.Minute) // keep the connection open after the client's FIN
			}()
		}
	}()
	return ir.Backend{Name: "test/echo", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
}

// TestTCPTimeouts checks that an idle connection and a half-closed one nobody finishes are
// closed by the proxy, and that traffic keeps a connection open past the idle timeout.
func TestTCPTimeouts(t *testing.T) {
	t.Parallel()
	// A timeout fires between one and two timeouts after the last byte (see pipe).
	const idle, halfClose = 400 * time.Millisecond, 100 * time.Millisecond
	port := freePort(t)
	startProxy(t, Options{TCPIdleTimeout: idle, TCPHalfCloseTimeout: halfClose}, snapshot(1, ir.Listener{Name: "tcp", Port: port, Protocol: ir.ProtocolTCP,
		TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "echo"}, Backends: []ir.Backend{startTCPEcho(t)}}}}))
	dial := func(t *testing.T) *net.TCPConn {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c.(*net.TCPConn)
	}
	echo := func(t *testing.T, c net.Conn, msg string) {
		t.Helper()
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo: got %q (%v); want %q", got, err, msg)
		}
	}
	// closedAfter waits for the proxy to close c and says how long that took.
	closedAfter := func(t *testing.T, c net.Conn) time.Duration {
		t.Helper()
		start := time.Now()
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read: got %d bytes, %v; want EOF from the proxy", n, err)
		}
		return time.Since(start)
	}
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		c := dial(t)
		echo(t, c, "hi")
		if d := closedAfter(t, c); d < idle/2 || d > 2*idle+time.Second {
			t.Errorf("idle connection closed after %v; want between %v and %v", d, idle, 2*idle)
		}
	})
	t.Run("traffic keeps it open", func(t *testing.T) {
		t.Parallel()
		c := dial(t)
		for range 12 { // 12 x 133 ms: past twice the idle timeout
			echo(t, c, "ping")
			time.Sleep(idle / 3)
		}
		echo(t, c, "still open")
	})
	t.Run("half-closed", func(t *testing.T) {
		t.Parallel()
		c := dial(t)
		echo(t, c, "hi")
		c.CloseWrite()
		if d := closedAfter(t, c); d >= idle {
			t.Errorf("half-closed connection closed after %v; want between %v and %v (the half-close timeout, before the idle one %v)", d, halfClose, 2*halfClose, idle)
		}
	})
}

// TestTCPRemovedListenerDrains checks that a removed TCP listener's connections are closed
// once the drain timeout is over, instead of going on to the old backend.
func TestTCPRemovedListenerDrains(t *testing.T) {
	t.Parallel()
	port, other := freePort(t), freePort(t)
	echoL := func(port int32) ir.Listener {
		return ir.Listener{Name: "tcp" + strconv.Itoa(int(port)), Port: port, Protocol: ir.ProtocolTCP,
			TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "echo"}, Backends: []ir.Backend{startTCPEcho(t)}}}}
	}
	p := startProxy(t, Options{DrainTimeout: 200 * time.Millisecond}, snapshot(1, echoL(port)))
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	if err := p.Apply(snapshot(2, echoL(other))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on the removed listener's connection: got %d bytes, %v; want EOF", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closed after %v; want about the 200 ms drain timeout", d)
	}
}
