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

// startScriptBackend runs serve for each request read on a connection; serve writes what it
// likes to c and returns false to close the connection. closed counts connections the
// backend saw closed by the proxy.
func startScriptBackend(t *testing.T, serve func(n int64, c net.Conn, req *http.Request) bool) (b ir.Backend, conns, closed *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	conns, closed = new(atomic.Int64), new(atomic.Int64)
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
						if err == io.EOF {
							closed.Add(1)
						}
						return
					}
					io.Copy(io.Discard, req.Body)
					if !serve(n.Add(1), c, req) {
						return
					}
				}
			}()
		}
	}()
	return ir.Backend{Name: "test/script", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}, conns, closed
}

// TestHTTP1FastPathMisbehavingBackends checks the limits the fast path shares with net/http's
// Transport against backends that break the rules. Each row sends two requests; the second
// shows whether anything of the first leaked into it.
func TestHTTP1FastPathMisbehavingBackends(t *testing.T) {
	t.Parallel()
	ok := func(n int64) string {
		body := fmt.Sprintf("answer %d", n)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	tests := []struct {
		name     string
		opts     Options
		serve    func(n int64, c net.Conn, req *http.Request) bool
		want     [2]string // status and body of each answer, as "200 answer 1"
		maxDelay time.Duration
	}{
		{"endless 1xx", Options{}, func(n int64, c net.Conn, _ *http.Request) bool {
			io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 10)+ok(n))
			return true
		}, [2]string{"502 ", "502 "}, 5 * time.Second},
		{"a few 1xx are fine", Options{}, func(n int64, c net.Conn, _ *http.Request) bool {
			io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", max1xxResponses)+ok(n))
			return true
		}, [2]string{"200 answer 1", "200 answer 2"}, 5 * time.Second},
		{"huge response head", Options{MaxResponseHeaderBytes: 64 << 10}, func(n int64, c net.Conn, _ *http.Request) bool {
			body := fmt.Sprintf("answer %d", n)
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: %d\r\n\r\n%s", strings.Repeat("a", 128<<10), len(body), body))
			return true
		}, [2]string{"502 ", "502 "}, 5 * time.Second},
		{"extra bytes in the same write", Options{}, func(n int64, c net.Conn, _ *http.Request) bool {
			io.WriteString(c, ok(n)+"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
			return true
		}, [2]string{"200 answer 1", "200 answer 2"}, 5 * time.Second},
		{"extra bytes after a pause", Options{}, func(n int64, c net.Conn, _ *http.Request) bool {
			io.WriteString(c, ok(n))
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
			return true
		}, [2]string{"200 answer 1", "200 answer 2"}, 5 * time.Second},
		{"no response head in time", Options{ResponseHeaderTimeout: 100 * time.Millisecond}, func(n int64, c net.Conn, _ *http.Request) bool {
			time.Sleep(time.Second)
			io.WriteString(c, ok(n))
			return true
		}, [2]string{"502 ", "502 "}, 800 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _, _ := startScriptBackend(t, tc.serve)
			port := freePort(t)
			startProxy(t, tc.opts, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
				RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b}}}}}}))
			c := h1Client()
			for i, want := range tc.want {
				start := time.Now()
				res, err := c.Get(proxyURL(port, "/"))
				if err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				got := fmt.Sprintf("%d %s", res.StatusCode, body)
				if res.StatusCode != 200 {
					got = fmt.Sprintf("%d ", res.StatusCode)
				}
				if got != want {
					t.Errorf("request %d: got %q; want %q", i+1, got, want)
				}
				if d := time.Since(start); d > tc.maxDelay {
					t.Errorf("request %d: took %v; want at most %v", i+1, d, tc.maxDelay)
				}
				// Let a late stray answer arrive at the idle connection.
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestHTTP1FastPathIdleReaper checks that idle connections are closed after the idle timeout
// even when their address is never asked for again.
func TestHTTP1FastPathIdleReaper(t *testing.T) {
	t.Parallel()
	b, conns, closed := startScriptBackend(t, func(n int64, c net.Conn, _ *http.Request) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	d := &net.Dialer{}
	f := &h1Fast{dial: d.DialContext, maxIdle: 4, idleTimeout: 100 * time.Millisecond}
	addr := fmt.Sprintf("127.0.0.1:%d", b.Endpoints[0].Port)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	res, err := f.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	f.mu.Lock()
	pooled := len(f.idle[addr])
	f.mu.Unlock()
	if pooled != 1 {
		t.Fatalf("pooled connections after one request: got %d; want 1", pooled)
	}
	deadline := time.Now().Add(3 * time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if closed.Load() != 1 || conns.Load() != 1 {
		t.Errorf("backend connections closed by the proxy: got %d of %d; want 1 of 1 within 3 s of a 100 ms idle timeout", closed.Load(), conns.Load())
	}
	f.mu.Lock()
	left := len(f.idle)
	f.mu.Unlock()
	if left != 0 {
		t.Errorf("addresses left in the pool: got %d; want 0", left)
	}
}

// TestResponseHeaderTimeout checks the default response head timeout on both HTTP/1 paths
// (the fast path for a GET, the Transport for a POST with a body), and that a route's own
// timeout replaces it, even when longer.
func TestResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	b := startBackend(t, "slow")
	port := freePort(t)
	startProxy(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{
			{Matches: []ir.HTTPMatch{{Path: prefix("/route-timeout")}}, Timeouts: &ir.Timeouts{Request: ir.Duration(5 * time.Second)}, Backends: []ir.Backend{b.irBackend(1)}},
			{Backends: []ir.Backend{b.irBackend(1)}},
		}}}}))
	tests := []struct {
		name, method, path string
		wantCode           int
	}{
		{"fast path", "GET", "/", 502},
		{"transport", "POST", "/", 502},
		{"route timeout, fast path", "GET", "/route-timeout", 200},
		{"route timeout, transport", "POST", "/route-timeout", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(tc.method, proxyURL(port, tc.path), body)
			req.Header.Set("X-Delay", "400ms")
			start := time.Now()
			res, err := h1Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantCode {
				t.Errorf("got %d after %v; want %d", res.StatusCode, time.Since(start), tc.wantCode)
			}
			if d := time.Since(start); tc.wantCode == 502 && d > 350*time.Millisecond {
				t.Errorf("502 after %v; want it at the 100 ms header timeout", d)
			}
		})
	}
}
