package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// httpsListener is an HTTPS listener on port for app.example routing everything to b; pool
// gets its certificate.
func httpsListener(t *testing.T, port int32, b *testBackend, pool *x509.CertPool) ir.Listener {
	t.Helper()
	c, k, parsed := selfSigned(t, "app.example")
	pool.AddCert(parsed)
	return ir.Listener{Name: "https", Port: port, Protocol: ir.ProtocolHTTPS,
		TLS: &ir.TLS{Certificates: []ir.Certificate{{Name: "test/app", CertPEM: c, KeyPEM: k}}},
		HTTPRoutes: []ir.HTTPRoute{{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"},
			Rules: []ir.HTTPRule{{Backends: []ir.Backend{b.irBackend(1)}}}}}}
}

func tlsDial(t *testing.T, port int32, pool *x509.CertPool, alpn ...string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)), &tls.Config{ServerName: "app.example", RootCAs: pool, NextProtos: alpn})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// TestHTTPSHostileRequests is TestHostileRequests over TLS: HTTP/1 framing conflicts must get
// 400 and never reach the backend, while ordinary requests still see TLS (r.TLS set).
func TestHTTPSHostileRequests(t *testing.T) {
	t.Parallel()
	b := startBackend(t, "b")
	port := freePort(t)
	pool := x509.NewCertPool()
	startProxy(t, Options{MaxHeaderBytes: 8 << 10}, snapshot(1, httpsListener(t, port, b, pool)))
	tests := []struct {
		name, raw string
		wantCodes []int
		wantHits  int64
	}{
		{"ordinary request", "GET /ok HTTP/1.1\r\nHost: app.example\r\n\r\n", []int{200}, 1},
		{"chunked and Content-Length", "POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", []int{400}, 0},
		{"Content-Length and chunked, odd case", "POST / HTTP/1.1\r\nHost: app.example\r\ncontent-LENGTH: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", []int{400}, 0},
		{"chunked with invalid Content-Length", "POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"conflicting Content-Length values", "POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", []int{400}, 0},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", []int{400}, 0},
		{"oversized headers", "GET / HTTP/1.1\r\nHost: app.example\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", []int{431}, 0},
		{"pipelined bodies then a conflicting request",
			"POST /1 HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\n\r\nhello" +
				"POST /2 HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
				"POST /3 HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			[]int{200, 200, 400}, 2},
	}
	for _, alpn := range [][]string{{"http/1.1"}, nil} {
		for _, tc := range tests {
			t.Run(tc.name+" alpn="+strconv.Quote(strings.Join(alpn, ",")), func(t *testing.T) {
				c := tlsDial(t, port, pool, alpn...)
				before := b.hits.Load()
				go io.WriteString(c, tc.raw)
				br := bufio.NewReader(c)
				var codes []int
				var last *http.Response
				var body []byte
				for range tc.wantCodes {
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						break
					}
					body, _ = io.ReadAll(res.Body)
					res.Body.Close()
					codes, last = append(codes, res.StatusCode), res
				}
				if !slices.Equal(codes, tc.wantCodes) {
					t.Fatalf("statuses: got %v; want %v", codes, tc.wantCodes)
				}
				if got := b.hits.Load() - before; got != tc.wantHits {
					t.Errorf("backend hits: got %d; want %d", got, tc.wantHits)
				}
				if tc.wantHits > 0 && last.StatusCode == 200 {
					// The forwarded scheme comes from r.TLS: it must survive the framing wrapper.
					var e echo
					if err := json.Unmarshal(body, &e); err != nil {
						t.Fatalf("decode echo: %v", err)
					}
					if got := e.Headers.Get("X-Forwarded-Proto"); got != "https" {
						t.Errorf("X-Forwarded-Proto at backend: got %q; want https", got)
					}
				}
			})
		}
	}
	t.Run("plaintext HTTP on the HTTPS port", func(t *testing.T) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		before := b.hits.Load()
		go io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("status: got %d; want 400", res.StatusCode)
		}
		if got := b.hits.Load() - before; got != 0 {
			t.Errorf("backend hits: got %d; want 0", got)
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		// HTTP/2 has no such framing ambiguity; a Transfer-Encoding field is malformed and the
		// HTTP/2 server answers 400. The ordinary request shows the test can tell.
		for _, tc := range []struct {
			name     string
			te       bool
			wantCode int
			wantHits int64
		}{{"ordinary request", false, 200, 1}, {"Transfer-Encoding and Content-Length", true, 400, 0}} {
			before := b.hits.Load()
			if got := h2Post(t, tlsDial(t, port, pool, "h2"), tc.te); got != tc.wantCode {
				t.Errorf("%s: status: got %d; want %d", tc.name, got, tc.wantCode)
			}
			if got := b.hits.Load() - before; got != tc.wantHits {
				t.Errorf("%s: backend hits: got %d; want %d", tc.name, got, tc.wantHits)
			}
		}
	})
}

// h2Post sends one POST with a 3-byte body as raw HTTP/2 frames (a Transport would drop a
// Transfer-Encoding header) and returns the response status.
func h2Post(t *testing.T, c *tls.Conn, withTE bool) int {
	t.Helper()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN: got %q; want h2", p)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "app.example"}, {":path", "/h2"}, {"content-length", "3"}}
	if withTE {
		fields = append(fields, [2]string{"transfer-encoding", "chunked"})
	}
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, true, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read HTTP/2 frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				code, _ := strconv.Atoi(f.PseudoValue("status"))
				return code
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("connection closed by GOAWAY: %v", f.ErrCode)
		}
	}
}

// TestHTTPSConnectionLifecycle: HTTPS connections (HTTP/1 and HTTP/2) survive a config swap
// that keeps their port, in-flight requests drain when the port is removed, and a client
// stuck before its handshake is cut off when the port closes.
func TestHTTPSConnectionLifecycle(t *testing.T) {
	t.Parallel()
	b := startBackend(t, "b")
	port, otherPort := freePort(t), freePort(t)
	pool := x509.NewCertPool()
	httpsL := httpsListener(t, port, b, pool)
	otherL := ir.Listener{Name: "other", Port: otherPort, Protocol: ir.ProtocolHTTP}
	p := startProxy(t, Options{}, snapshot(1, httpsL))
	url := "https://127.0.0.1:" + strconv.Itoa(int(port)) + "/p"
	clients := map[string]*http.Client{}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "app.example", RootCAs: pool}, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(proto == "HTTP/1.1")
		tr.Protocols.SetHTTP2(proto == "HTTP/2.0")
		t.Cleanup(tr.CloseIdleConnections)
		clients[proto] = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	get := func(step, name string, delay string, wantReused bool) {
		t.Helper()
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Host = "app.example"
		if delay != "" {
			req.Header.Set("X-Delay", delay)
		}
		res, err := clients[name].Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", step, name, err)
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Proto != name {
			t.Errorf("%s: got %d over %s; want 200 over %s", step, res.StatusCode, res.Proto, name)
		}
		if reused != wantReused {
			t.Errorf("%s %s: connection reused: got %v; want %v", step, name, reused, wantReused)
		}
	}
	for name := range clients {
		get("before swap", name, "", false)
	}
	if err := p.Apply(snapshot(2, httpsL, otherL)); err != nil {
		t.Fatal(err)
	}
	for name := range clients {
		get("after swap keeping the port", name, "", true)
	}

	// A client that connected but never starts its handshake.
	silent, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	var wg sync.WaitGroup
	before := b.hits.Load()
	for name := range clients {
		wg.Go(func() { get("in flight while the port is removed", name, "500ms", true) })
	}
	for start := time.Now(); b.hits.Load()-before < 2; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("waiting for 2 requests to reach the backend: got %d after 5s", b.hits.Load()-before)
		}
	}
	if err := p.Apply(snapshot(3, otherL)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(port)), time.Second); err == nil {
		c.Close()
		t.Errorf("dial removed HTTPS listener: got a connection; want refused")
	}
	silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection waiting for its handshake: still open 3s after its port closed; want closed")
	}
}
