package echo_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

var testID = identity.Identity{Backend: "v1", Pod: "pod-a", Namespace: "ns", Service: "svc", Ingress: "gw"}

// syncBuffer is a log sink the test can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	addr  string
	srv   *echo.Server
	store *records.Store
	log   *syncBuffer
}

func start(t *testing.T, tlsConf *tls.Config) *fixture {
	t.Helper()
	f := &fixture{store: records.NewStore(testID, 100), log: &syncBuffer{}}
	srv, err := echo.NewServer(echo.Options{Identity: testID, Records: f.store, RequestLog: f.log, TLS: tlsConf})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	f.addr = ln.Addr().String()
	f.srv = srv
	return f
}

func decode(t *testing.T, resp *http.Response) echo.Response {
	t.Helper()
	defer resp.Body.Close()
	var got echo.Response
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decode echo: %v", err)
	}
	return got
}

func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

func TestEchoHTTP1(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	req, _ := http.NewRequest(http.MethodPost, "http://"+f.addr+"/foo/bar?x=1&request-id=q-id", strings.NewReader("hello"))
	req.Host = "example.com"
	req.Header.Set("X-Custom", "a")
	req.Header.Set(echo.SetHeaderHeader, "X-Out: one, X-Other: two")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if got, want := resp.Header.Get("X-Out"), " one"; got != want && got != "one" {
		t.Errorf("response header X-Out: got %q; want %q", got, want)
	}
	if got, want := resp.Header.Get("X-Other"), "two"; got != want {
		t.Errorf("response header X-Other: got %q; want %q", got, want)
	}
	got := decode(t, resp)
	_, port, _ := net.SplitHostPort(f.addr)
	want := echo.Response{
		Path: "/foo/bar?x=1&request-id=q-id", Host: "example.com", Method: "POST", Proto: "HTTP/1.1",
		HTTPPort: port, Identity: testID, RequestID: "q-id", BodyLength: 5, Seq: 1,
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Headers", ".ConnectionID", ".ReceivedAt", ".RemoteAddr":
			return true
		}
		return false
	}, cmp.Ignore())
	if d := cmp.Diff(want, got, ignore); d != "" {
		t.Errorf("echo (-want +got):\n%s", d)
	}
	if got.Headers["X-Custom"][0] != "a" {
		t.Errorf("echoed header X-Custom: got %q; want %q", got.Headers["X-Custom"], "a")
	}
	if got.ConnectionID == "" || got.ReceivedAt.IsZero() || got.RemoteAddr == "" {
		t.Errorf("connectionId %q, receivedAt %v, remoteAddr %q: want all set", got.ConnectionID, got.ReceivedAt, got.RemoteAddr)
	}
	line := f.log.String()
	for _, part := range []string{"Echoing back request made to /foo/bar?x=1&request-id=q-id to client", "request_id=q-id", "connection_id=" + got.ConnectionID, "seq=1", "backend=v1"} {
		if !strings.Contains(line, part) {
			t.Errorf("log line %q: want it to contain %q", line, part)
		}
	}
	if n := strings.Count(line, "\n"); n != 1 {
		t.Errorf("log lines: got %d; want 1", n)
	}
	page := f.store.Find(records.Query{ID: "q-id"})
	if len(page.Records) != 1 || page.Records[0].Path != "/foo/bar" || page.Records[0].ConnectionID != got.ConnectionID {
		t.Errorf("records for q-id: got %+v; want one record for /foo/bar on %s", page.Records, got.ConnectionID)
	}
}

func TestEchoRequestShaping(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	tests := []struct {
		name       string
		path       string
		header     string
		wantCode   int
		wantID     string
		minElapsed time.Duration
	}{
		{name: "status 503", path: "/status/503", wantCode: 503},
		{name: "status 302", path: "/status/302", wantCode: 302},
		{name: "status out of range", path: "/status/099", wantCode: 400},
		{name: "status not a number", path: "/status/abc", wantCode: 400},
		{name: "delay", path: "/slow?delay=150ms", wantCode: 200, minElapsed: 150 * time.Millisecond},
		{name: "bad delay", path: "/slow?delay=soon", wantCode: 400},
		{name: "header id wins over query", path: "/id?request-id=q", header: "h", wantCode: 200, wantID: "h"},
		{name: "conformance id", path: "/id?gateway-api-conformance-request-id=c", wantCode: 200, wantID: "c"},
		{name: "health", path: "/health", wantCode: 200},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodGet, "http://"+f.addr+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("X-Request-Id", tc.header)
			}
			began := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			elapsed := time.Since(began)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Errorf("GET %s: got status %d; want %d (body %s)", tc.path, resp.StatusCode, tc.wantCode, body)
			}
			if elapsed < tc.minElapsed {
				t.Errorf("GET %s: answered after %v; want at least %v", tc.path, elapsed, tc.minElapsed)
			}
			if tc.wantID != "" {
				var got echo.Response
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if got.RequestID != tc.wantID {
					t.Errorf("requestId: got %q; want %q", got.RequestID, tc.wantID)
				}
			}
		})
	}
}

func TestEchoH2CPriorKnowledgeSharesConnection(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	client := h2cClient()
	var conns []string
	for i := range 3 {
		resp, err := client.Get(fmt.Sprintf("http://%s/h2?request-id=r%d", f.addr, i))
		if err != nil {
			t.Fatalf("h2c GET: %v", err)
		}
		got := decode(t, resp)
		if got.Proto != "HTTP/2.0" {
			t.Errorf("proto: got %q; want HTTP/2.0", got.Proto)
		}
		conns = append(conns, got.ConnectionID)
	}
	if conns[0] == "" || conns[0] != conns[1] || conns[1] != conns[2] {
		t.Errorf("connection ids over one h2c connection: got %v; want three equal non-empty ids", conns)
	}
}

// upgradeH2C opens a connection, upgrades it with an Upgrade: h2c request for path and
// returns a framer ready to read stream 1.
func upgradeH2C(t *testing.T, addr, path string) *http2.Framer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var settings bytes.Buffer
	if err := http2.NewFramer(&settings, nil).WriteSettings(); err != nil {
		t.Fatal(err)
	}
	payload := base64.RawURLEncoding.EncodeToString(settings.Bytes()[9:]) // strip the frame header
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: up.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", path, payload)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade response: got status %d; want 101", resp.StatusCode)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

func TestEchoH2CUpgrade(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	fr := upgradeH2C(t, f.addr, "/upgraded?request-id=up")
	status, body := readStream(t, fr, 1)
	if status != "200" {
		t.Errorf("stream 1 :status: got %q; want 200", status)
	}
	var first echo.Response
	if err := json.Unmarshal(body, &first); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	// The upgrade request itself travelled as HTTP/1.1, and the echo says so; its answer came
	// back on HTTP/2 stream 1.
	if first.Proto != "HTTP/1.1" || first.RequestID != "up" || first.Host != "up.example" || first.ConnectionID == "" {
		t.Errorf("upgrade echo: got proto %q id %q host %q conn %q; want HTTP/1.1, up, up.example, non-empty", first.Proto, first.RequestID, first.Host, first.ConnectionID)
	}
	// A second request on the upgraded connection is plain HTTP/2 (client streams start at 3).
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, hf := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "up.example"}, {":path", "/second?request-id=s2"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	status, body = readStream(t, fr, 3)
	var second echo.Response
	if err := json.Unmarshal(body, &second); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	if status != "200" || second.Proto != "HTTP/2.0" || second.RequestID != "s2" || second.ConnectionID != first.ConnectionID {
		t.Errorf("stream 3: got status %q proto %q id %q conn %q; want 200, HTTP/2.0, s2, %q", status, second.Proto, second.RequestID, second.ConnectionID, first.ConnectionID)
	}
}

var (
	decodersMu sync.Mutex
	decoders   = map[*http2.Framer]*hpack.Decoder{}
)

// readStream reads frames until stream id ends and returns its :status and body.
func readStream(t *testing.T, fr *http2.Framer, id uint32) (string, []byte) {
	t.Helper()
	status, body, err := readStreamErr(fr, id)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// readStreamErr is readStream for goroutines other than the test's.
// One decoder per connection, since HPACK's dynamic table spans streams.
func readStreamErr(fr *http2.Framer, id uint32) (string, []byte, error) {
	var status string
	var body bytes.Buffer
	decodersMu.Lock()
	dec, ok := decoders[fr]
	if !ok {
		dec = hpack.NewDecoder(4096, nil)
		decoders[fr] = dec
	}
	decodersMu.Unlock()
	dec.SetEmitFunc(func(hf hpack.HeaderField) {
		if hf.Name == ":status" {
			status = hf.Value
		}
	})
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return status, body.Bytes(), fmt.Errorf("read frame of stream %d: %w", id, err)
		}
		if frame.Header().StreamID != id {
			continue
		}
		switch f := frame.(type) {
		case *http2.HeadersFrame:
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				return status, body.Bytes(), fmt.Errorf("decode headers of stream %d: %w", id, err)
			}
			if f.StreamEnded() {
				return status, body.Bytes(), nil
			}
		case *http2.DataFrame:
			body.Write(f.Data())
			if f.StreamEnded() {
				return status, body.Bytes(), nil
			}
		}
	}
}

func TestEchoTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t, "echo.test")
	f := start(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "echo.test"}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + f.addr + "/tls")
		if err != nil {
			t.Fatalf("https GET (h2 %v): %v", h2, err)
		}
		got := decode(t, resp)
		wantProto, wantALPN := "HTTP/1.1", "http/1.1"
		if h2 {
			wantProto, wantALPN = "HTTP/2.0", "h2"
		}
		if got.TLS == nil {
			t.Fatalf("tls: got nil; want set")
		}
		if got.Proto != wantProto || got.TLS.ServerName != "echo.test" || got.TLS.NegotiatedProtocol != wantALPN || got.TLS.Version != "TLSv1.3" {
			t.Errorf("tls echo: got proto %q %+v; want %s, serverName echo.test, ALPN %s, TLSv1.3", got.Proto, *got.TLS, wantProto, wantALPN)
		}
		tr.CloseIdleConnections()
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	const slow = "/slow?delay=400ms"
	results := make(chan string, 3)
	for name, client := range map[string]*http.Client{"http1": http.DefaultClient, "h2c": h2cClient()} {
		go func() {
			resp, err := client.Get("http://" + f.addr + slow)
			if err != nil {
				results <- fmt.Sprintf("%s: %v", name, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%s: %d", name, resp.StatusCode)
		}()
	}
	fr := upgradeH2C(t, f.addr, slow)
	go func() {
		status, _, err := readStreamErr(fr, 1)
		if err != nil {
			results <- "upgraded: " + err.Error()
			return
		}
		results <- "upgraded: " + status
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.store.Stats().Total < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for 3 in-flight requests; got %d", f.store.Stats().Total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if waited := time.Since(began); waited < 200*time.Millisecond {
		t.Errorf("Shutdown returned after %v; want it to wait for the 400ms requests", waited)
	}
	got := map[string]bool{}
	for range 3 {
		got[<-results] = true
	}
	want := map[string]bool{"http1: 200": true, "h2c: 200": true, "upgraded: 200": true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("in-flight requests across Shutdown (-want +got):\n%s", d)
	}
	if _, err := http.Get("http://" + f.addr + "/after"); err == nil {
		t.Errorf("request after Shutdown: got success; want connection refused")
	}
}

// selfSigned makes a throwaway ECDSA certificate for name and a pool that trusts it.
func selfSigned(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestEchoTLSClientCertificate(t *testing.T) {
	t.Parallel()
	serverCert, pool := selfSigned(t, "echo.test")
	clientCert, clientPool := selfSigned(t, "client.test")
	f := start(t, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: clientPool, ClientAuth: tls.VerifyClientCertIfGiven})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "echo.test", Certificates: []tls.Certificate{clientCert}}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + f.addr + "/mtls")
	if err != nil {
		t.Fatalf("https GET with client cert: %v", err)
	}
	got := decode(t, resp)
	if got.TLS == nil || len(got.TLS.PeerCertificates) != 1 || !strings.HasPrefix(got.TLS.PeerCertificates[0], "-----BEGIN CERTIFICATE-----") {
		t.Errorf("tls.peerCertificates: got %+v; want the client's certificate as one PEM block", got.TLS)
	}
}

func TestShutdownWaitsForUpgradedH2C(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	fr := upgradeH2C(t, f.addr, "/slow?delay=400ms")
	result := make(chan string, 1)
	go func() {
		status, _, err := readStreamErr(fr, 1)
		if err != nil {
			result <- err.Error()
			return
		}
		result <- status
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.store.Stats().Total < 1 {
		if time.Now().After(deadline) {
			t.Fatal("waited 5s for the upgraded request to arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	// Hijacked connections are invisible to http.Server.Shutdown; ours must wait for them.
	if waited := time.Since(began); waited < 200*time.Millisecond {
		t.Errorf("Shutdown returned after %v with an upgraded h2c request in flight; want it to wait for the 400ms request", waited)
	}
	if got := <-result; got != "200" {
		t.Errorf("upgraded in-flight request: got %q; want 200", got)
	}
}

// A backend told to be slow and failing answers every request late with that status, but
// keeps the record at once (so a mirror's delivery is visible before its answer).
func TestResponseDelayAndStatus(t *testing.T) {
	t.Parallel()
	store := records.NewStore(testID, 10)
	srv, err := echo.NewServer(echo.Options{Identity: testID, Records: store, ResponseDelay: 300 * time.Millisecond, ResponseStatus: 500})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	start := time.Now()
	resp, err := http.Get("http://" + ln.Addr().String() + "/any")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("got %d after %s; want 500 after >= 300ms", resp.StatusCode, time.Since(start))
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/status/204")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("/status/204 with ResponseStatus 500: got %d; want 204 (the request's own ask wins)", resp.StatusCode)
	}
}
