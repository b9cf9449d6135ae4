package proxy

import (
	"bytes"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// rawLoop is a client and a backend that allocate nothing per request, so that the
// allocations counted around one request through the proxy are the proxy's own.
type rawLoop struct {
	t    testing.TB
	port int32
	conn net.Conn
	req  []byte
	buf  []byte
}

// startRawLoop starts a backend answering every request head with a fixed 2-byte answer, a
// proxy routing port's "/" to it, and a keep-alive client connection to the proxy.
func startRawLoop(t testing.TB) *rawLoop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(answer); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
					if n == len(buf) {
						return
					}
				}
			}()
		}
	}()
	port := freePort(t)
	be := ir.Backend{Name: "test/raw", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{be}}}}}}))
	return dialRawLoop(t, port)
}

// dialRawLoop opens another client connection to the proxy port of a startRawLoop.
func dialRawLoop(t testing.TB, port int32) *rawLoop {
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The request Go's HTTP client sends (the bench's load).
	req := "GET /bench HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(int(port)) + "\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
	return &rawLoop{t: t, port: port, conn: c, req: []byte(req), buf: make([]byte, 4096)}
}

// do sends one request and reads its answer (a head ending in the 2-byte body "ok").
func (l *rawLoop) do() {
	l.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := l.conn.Write(l.req); err != nil {
		l.t.Fatal(err)
	}
	n := 0
	for {
		m, err := l.conn.Read(l.buf[n:])
		if err != nil {
			l.t.Fatalf("after %q: %v", l.buf[:n], err)
		}
		n += m
		if bytes.HasSuffix(l.buf[:n], []byte("\r\n\r\nok")) {
			break
		}
		if n == len(l.buf) {
			l.t.Fatalf("answer longer than %d bytes: %q", n, l.buf[:n])
		}
	}
	if !bytes.HasPrefix(l.buf[:n], []byte("HTTP/1.1 200 OK\r\n")) {
		l.t.Fatalf("answer %q; want 200", l.buf[:n])
	}
}

// TestH1ServerAllocs pins the allocations of one plain GET through h1Server and the h1 fast
// path (keep-alive on both sides): hack/bench-proxy.sh's request. The one allocation is the
// request head's string (the Request's strings are parts of it; mirrors keep them). Not
// parallel: the count is the process's.
func TestH1ServerAllocs(t *testing.T) {
	l := startRawLoop(t)
	for range 50 {
		l.do() // connections pooled, buffers and caches warm
	}
	const want = 1
	if got := testing.AllocsPerRun(500, l.do); got > want {
		t.Errorf("allocations per request: got %v; want <= %d", got, want)
	} else {
		t.Logf("allocations per request: %v", got)
	}
}

// BenchmarkH1ServerRaw is one plain GET through the proxy with a client and a backend that
// allocate nothing: allocs/op are the proxy's. "serial" sends one request at a time, "16conns"
// keeps 16 keep-alive connections busy as hack/bench-proxy.sh does; with the process's CPU
// time divided by b.N (-benchtime Nx), it compares the proxy's CPU per request between builds.
func BenchmarkH1ServerRaw(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		l := startRawLoop(b)
		b.ReportAllocs()
		for b.Loop() {
			l.do()
		}
	})
	b.Run("16conns", func(b *testing.B) {
		l := startRawLoop(b)
		conns := make(chan *rawLoop, 16)
		for range 16 {
			conns <- dialRawLoop(b, l.port)
		}
		b.ReportAllocs()
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			c := <-conns
			defer func() { conns <- c }()
			for pb.Next() {
				c.do()
			}
		})
	})
}
