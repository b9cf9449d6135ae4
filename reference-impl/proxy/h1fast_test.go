package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// startRawBackend answers each request read from a connection with answer(n), n counting
// requests across connections; close says whether to close the connection afterwards.
func startRawBackend(t *testing.T, answer func(n int64, req *http.Request) (raw string, close bool)) (ir.Backend, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n, conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					raw, closeAfter := answer(n.Add(1), req)
					io.WriteString(c, raw)
					if closeAfter {
						return
					}
				}
			}()
		}
	}()
	return ir.Backend{Name: "test/raw", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}, &conns
}

func TestHTTP1FastPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		answer    func(n int64, req *http.Request) (string, bool)
		method    string
		wantBody  string
		wantConns func(got int64) bool // backend connections after 5 requests
	}{
		{"keep-alive reuses one connection", func(n int64, _ *http.Request) (string, bool) {
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false
		}, "GET", "ok", func(c int64) bool { return c == 1 }},
		{"backend closes silently after each answer: stale connection is retried", func(n int64, _ *http.Request) (string, bool) {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
		}, "GET", "ok", func(c int64) bool { return c >= 5 }},
		{"Connection: close is honoured", func(n int64, _ *http.Request) (string, bool) {
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true
		}, "GET", "ok", func(c int64) bool { return c == 5 }},
		{"body until close", func(n int64, _ *http.Request) (string, bool) {
			return "HTTP/1.1 200 OK\r\n\r\nuntil-close", true
		}, "GET", "until-close", func(c int64) bool { return c == 5 }},
		{"chunked with trailer", func(n int64, _ *http.Request) (string, bool) {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", false
		}, "GET", "ok", func(c int64) bool { return c == 1 }},
		{"interim 100 and 103 are skipped", func(n int64, _ *http.Request) (string, bool) {
			return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
		}, "GET", "ok", func(c int64) bool { return c == 1 }},
		{"HEAD", func(n int64, _ *http.Request) (string, bool) {
			return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false
		}, "HEAD", "", func(c int64) bool { return c == 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, conns := startRawBackend(t, tc.answer)
			port := freePort(t)
			startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
				RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b}}}}}}))
			c := h1Client()
			for i := range 5 {
				req, _ := http.NewRequest(tc.method, proxyURL(port, "/"), nil)
				res, err := c.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || string(body) != tc.wantBody {
					t.Fatalf("request %d: got %d %q; want 200 %q", i, res.StatusCode, body, tc.wantBody)
				}
				// Let a silently closing backend's FIN arrive before the next request.
				time.Sleep(2 * time.Millisecond)
			}
			if got := conns.Load(); !tc.wantConns(got) {
				t.Errorf("backend connections after 5 requests: got %d", got)
			}
		})
	}
}

// TestHTTP1FastPathCancel checks that a client going away mid-response frees the upstream
// connection instead of returning it to the pool half-read.
func TestHTTP1FastPathCancel(t *testing.T) {
	t.Parallel()
	slow, conns := startRawBackend(t, func(n int64, _ *http.Request) (string, bool) {
		if n == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	port := freePort(t)
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{slow}}}}}}))
	c := h1Client()
	c.Timeout = 50 * time.Millisecond
	if _, err := c.Get(proxyURL(port, "/")); err == nil {
		t.Fatalf("first request: got an answer; want a client timeout")
	}
	c.Timeout = 5 * time.Second
	time.Sleep(400 * time.Millisecond)
	res, err := c.Get(proxyURL(port, "/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Errorf("second request: got %d %q; want 200 ok", res.StatusCode, body)
	}
	if got := conns.Load(); got != 2 {
		t.Errorf("backend connections: got %d; want 2 (the cancelled one must not be reused)", got)
	}
}
