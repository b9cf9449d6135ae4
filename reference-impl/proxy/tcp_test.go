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
