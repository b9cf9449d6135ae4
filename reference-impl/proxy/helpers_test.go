package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// echo is what the test backends answer.
type echo struct {
	Backend string      `json:"backend"`
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	URI     string      `json:"uri"` // the request-target as it arrived
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Proto   string      `json:"proto"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// testBackend is a loopback HTTP/1.1 + h2c server answering every request with an echo of it.
// A request header X-Delay (a Go duration) makes it wait before answering.
type testBackend struct {
	name  string
	addr  *net.TCPAddr
	hits  atomic.Int64
	delay time.Duration // applied to every request
	last  atomic.Pointer[echo]
}

func startBackend(t testing.TB, name string) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("backend %s: listen: %v", name, err)
	}
	b := &testBackend{name: name, addr: ln.Addr().(*net.TCPAddr)}
	srv := &http.Server{Handler: b, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *testBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	d := b.delay
	if v := r.Header.Get("X-Delay"); v != "" {
		d, _ = time.ParseDuration(v)
	}
	if d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	e := &echo{Backend: b.name, Method: r.Method, Path: r.URL.Path, URI: r.RequestURI, Query: r.URL.RawQuery,
		Host: r.Host, Proto: r.Proto, Headers: r.Header, Body: string(body)}
	b.last.Store(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend", b.name)
	json.NewEncoder(w).Encode(e)
}

// irBackend is b as a weighted ir.Backend.
func (b *testBackend) irBackend(weight int32) ir.Backend {
	return ir.Backend{Name: "test/" + b.name, Weight: weight, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(b.addr.Port)}}}
}

// freePort returns a loopback port that was free for both TCP and UDP a moment ago and that it
// has not returned before (the kernel may hand out a just-closed port again, and a test taking
// two ports would then get the same one twice). Both protocols: listeners of either kind are
// given these ports, and the UDP backends and clients of parallel tests hold ephemeral UDP
// ports that a TCP-only check does not see (make test failed with "bind: address already in
// use" for a UDP listener on a port TCP had called free).
func freePort(t testing.TB) int32 {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := int32(ln.Addr().(*net.TCPAddr).Port)
		u, uerr := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
		ln.Close()
		if uerr != nil {
			continue
		}
		u.Close()
		if _, dup := givenPorts.LoadOrStore(port, true); !dup {
			return port
		}
	}
}

var givenPorts sync.Map

func testLogger() *slog.Logger {
	if os.Getenv("PROXY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startProxy(t testing.TB, opts Options, s *ir.Snapshot) *Proxy {
	t.Helper()
	opts.BindAddress = "127.0.0.1"
	opts.Logger = testLogger()
	p := New(opts)
	if err := p.Apply(s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func snapshot(version int64, ls ...ir.Listener) *ir.Snapshot {
	return &ir.Snapshot{Version: version, Gateway: ir.NamespacedName{Namespace: "test", Name: "gw"}, Listeners: ls}
}

func proxyURL(port int32, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(int(port)) + path
}

// h1Client speaks HTTP/1.1 with keep-alive and never follows redirects.
func h1Client() *http.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
}

// h2cClient speaks HTTP/2 over cleartext with prior knowledge.
func h2cClient() *http.Client {
	tr := &http.Transport{Proxy: nil, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
}

// do sends a request and decodes the echo; echo.Backend is "" when the answer is not an echo.
func do(t testing.TB, c *http.Client, method, url, host string, hdr map[string]string) (*http.Response, echo) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (host %s): %v", method, url, host, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var e echo
	json.Unmarshal(body, &e)
	return res, e
}

type stringsBuilder = strings.Builder

func contains(s, sub string) bool { return strings.Contains(s, sub) }
