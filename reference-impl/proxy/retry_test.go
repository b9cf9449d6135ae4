package proxy

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// flakyBackend is the upstream echo-basic retry simulator: per ?uuid= it fails the first
// ?succeedAfter= attempts, with ?responseCode= or, without one, a TCP reset; a ?delay= makes
// the failing attempts slow instead. Then it answers 200.
type flakyBackend struct {
	mu       sync.Mutex
	attempts map[string]int
	addr     *net.TCPAddr
}

func startFlaky(t *testing.T) *flakyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &flakyBackend{attempts: map[string]int{}, addr: ln.Addr().(*net.TCPAddr)}
	srv := &http.Server{Handler: fb}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fb
}

func (fb *flakyBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("succeedAfter"))
	fb.mu.Lock()
	fail := fb.attempts[q.Get("uuid")] < n
	fb.attempts[q.Get("uuid")]++
	fb.mu.Unlock()
	if !fail {
		body, _ := io.ReadAll(r.Body)
		w.Write(append([]byte("ok:"), body...))
		return
	}
	if d, err := time.ParseDuration(q.Get("delay")); err == nil {
		time.Sleep(d)
		w.Write([]byte("slow ok"))
		return
	}
	if code, err := strconv.Atoi(q.Get("responseCode")); err == nil {
		w.WriteHeader(code)
		return
	}
	c, _, _ := w.(http.Hijacker).Hijack()
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

func (fb *flakyBackend) count(uuid string) int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.attempts[uuid]
}

// TestRetry runs HTTPRouteRetry's cases (retry on listed codes up to attempts, the last
// answer when they run out, no retry on other codes) plus connection resets, the backoff, the
// backendRequest timeout per attempt, and a request body sent again, on both HTTP/1 server
// paths and h2c.
func TestRetry(t *testing.T) {
	t.Parallel()
	fb := startFlaky(t)
	port := freePort(t)
	be := ir.Backend{Name: "test/flaky", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(fb.addr.Port)}}}
	rule := func(i int, path string, rt *ir.Retry, to *ir.Timeouts) ir.HTTPRule {
		return ir.HTTPRule{Index: i, Matches: []ir.HTTPMatch{{Path: prefix(path)}}, Backends: []ir.Backend{be}, Retry: rt, Timeouts: to}
	}
	rules := []ir.HTTPRule{
		rule(0, "/code-500-attempts-3", &ir.Retry{Codes: []int{500}, Attempts: 3}, nil),
		rule(1, "/code-all-attempts-2", &ir.Retry{Codes: []int{500, 502, 503, 504}, Attempts: 2}, nil),
		rule(2, "/backoff", &ir.Retry{Codes: []int{503}, Attempts: 2, Backoff: ir.Duration(150 * time.Millisecond)}, nil),
		rule(3, "/attempt-timeout", &ir.Retry{Attempts: 2}, &ir.Timeouts{BackendRequest: ir.Duration(300 * time.Millisecond)}),
		rule(4, "/no-retry", nil, nil),
	}
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "retries"}, Rules: rules}}}))

	tests := []struct {
		name, path, query string
		method            string
		want, attempts    int
		minTime           time.Duration
		// orOneMore: net/http's Transport itself retries a request once when its reused
		// connection was reset before any answer, so the backend may count one more.
		orOneMore bool
	}{
		{"500 succeeds after 2 retries", "/code-500-attempts-3", "responseCode=500&succeedAfter=2", "GET", 200, 3, 0, false},
		{"500 beyond 3 attempts", "/code-500-attempts-3", "responseCode=500&succeedAfter=4", "GET", 500, 4, 0, false},
		{"503 not listed", "/code-500-attempts-3", "responseCode=503&succeedAfter=2", "GET", 503, 1, 0, false},
		{"all codes: 502 after 1", "/code-all-attempts-2", "responseCode=502&succeedAfter=1", "GET", 200, 2, 0, false},
		{"all codes: 504 beyond 2", "/code-all-attempts-2", "responseCode=504&succeedAfter=3", "GET", 504, 3, 0, false},
		{"connection reset retried", "/code-all-attempts-2", "succeedAfter=2", "GET", 200, 3, 0, true},
		{"connection reset beyond attempts", "/code-all-attempts-2", "succeedAfter=5", "GET", 502, 3, 0, true},
		{"body sent again", "/code-all-attempts-2", "responseCode=500&succeedAfter=1", "POST", 200, 2, 0, false},
		{"backoff between attempts", "/backoff", "responseCode=503&succeedAfter=2", "GET", 200, 3, 300 * time.Millisecond, false},
		{"slow attempt cut and retried", "/attempt-timeout", "delay=2s&succeedAfter=1", "GET", 200, 2, 300 * time.Millisecond, false},
		{"slow attempts run out: 504", "/attempt-timeout", "delay=2s&succeedAfter=5", "GET", 504, 3, 900 * time.Millisecond, false},
		{"no retry policy", "/no-retry", "responseCode=500&succeedAfter=1", "GET", 500, 1, 0, false},
	}
	for _, client := range []struct {
		name string
		c    *http.Client
	}{{"http1", h1Client()}, {"h2c", h2cClient()}} {
		t.Run(client.name, func(t *testing.T) {
			t.Parallel()
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					uuid := client.name + "-" + strconv.Itoa(i)
					u := proxyURL(port, tc.path+"?"+tc.query+"&uuid="+url.QueryEscape(uuid))
					var body *strings.Reader
					req, _ := http.NewRequest(tc.method, u, nil)
					if tc.method == "POST" {
						body = strings.NewReader("payload")
						req, _ = http.NewRequest(tc.method, u, body)
					}
					start := time.Now()
					res, err := client.c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(res.Body)
					res.Body.Close()
					took := time.Since(start)
					if tc.method == "POST" && string(got) != "ok:payload" {
						t.Errorf("POST answer %q; want the body sent again: ok:payload", got)
					}
					n := fb.count(uuid)
					if res.StatusCode != tc.want || (n != tc.attempts && !(tc.orOneMore && n == tc.attempts+1)) || took < tc.minTime {
						t.Errorf("%s %s: %d after %d backend attempts in %v; want %d after %d, at least %v",
							tc.method, tc.path, res.StatusCode, n, took.Round(time.Millisecond), tc.want, tc.attempts, tc.minTime)
					}
				})
			}
		})
	}
}
