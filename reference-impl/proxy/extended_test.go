package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// TestHTTPExtendedFeatures covers what the reference claims for issue 19's HTTP extended
// features, through the proxy on loopback with HTTP/1.1 (the h1 fast path) and h2c clients:
// redirect codes 303/307/308 (HTTPRoute303/307/308RedirectStatusCode), a backendRef-level
// RequestHeaderModifier per weighted backend (HTTPRouteBackendRequestHeaderModification: the
// header must name the backend that answered, every time), and named rules
// (HTTPRouteNamedRouteRule: the metrics label carries the name; unnamed rules keep
// "namespace/route/index").
func TestHTTPExtendedFeatures(t *testing.T) {
	t.Parallel()
	v1, v2 := startBackend(t, "v1"), startBackend(t, "v2")
	port := freePort(t)
	redirect := func(code int) []ir.Filter {
		return []ir.Filter{{Type: ir.FilterRequestRedirect, RequestRedirect: &ir.Redirect{Hostname: ptr("example.net"), StatusCode: code}}}
	}
	tagged := func(b *testBackend) ir.Backend {
		ib := b.irBackend(1)
		ib.Filters = []ir.Filter{{Type: ir.FilterRequestHeaderModifier, RequestHeaderModifier: &ir.HeaderModifier{
			Set: []ir.Header{{Name: "Backend", Value: b.name}}, Remove: []string{"X-Drop"}}}}
		return ib
	}
	rules := []ir.HTTPRule{
		{Name: "named", Matches: []ir.HTTPMatch{{Path: prefix("/named")}}, Backends: []ir.Backend{v1.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/unnamed")}}, Backends: []ir.Backend{v1.irBackend(1)}},
		{Matches: []ir.HTTPMatch{{Path: prefix("/see-other")}}, Filters: redirect(303)},
		{Matches: []ir.HTTPMatch{{Path: prefix("/temporary")}}, Filters: redirect(307)},
		{Name: "permanent", Matches: []ir.HTTPMatch{{Path: prefix("/permanent")}}, Filters: redirect(308)},
		{Matches: []ir.HTTPMatch{{Path: prefix("/weighted")}}, Backends: []ir.Backend{tagged(v1), tagged(v2)}},
	}
	for i := range rules {
		rules[i].Index = i
	}
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: rules}}}))

	for _, client := range []struct {
		name string
		c    *http.Client
	}{{"http1", h1Client()}, {"h2c", h2cClient()}} {
		t.Run(client.name, func(t *testing.T) {
			// The listener's port is kept: the redirect sets no port and the listener is not on 80.
			loc := "http://example.net:" + strconv.Itoa(int(port))
			for _, tc := range []struct {
				path string
				code int
			}{{"/see-other/x?q=1", 303}, {"/temporary/x?q=1", 307}, {"/permanent/x?q=1", 308}} {
				res, _ := do(t, client.c, "GET", proxyURL(port, tc.path), "app.example", nil)
				if res.StatusCode != tc.code || res.Header.Get("Location") != loc+tc.path {
					t.Errorf("GET %s: %d Location %q; want %d to %s", tc.path, res.StatusCode, res.Header.Get("Location"), tc.code, loc+tc.path)
				}
			}
			seen := map[string]int{}
			for range 100 {
				res, e := do(t, client.c, "GET", proxyURL(port, "/weighted"), "app.example", map[string]string{"Backend": "client", "X-Drop": "x"})
				got := e.Headers["Backend"]
				if res.StatusCode != 200 || len(got) != 1 || got[0] != e.Backend || len(e.Headers["X-Drop"]) != 0 {
					t.Fatalf("GET /weighted: %d from %q with Backend %q, X-Drop %q; want 200 and one Backend header naming the backend that answered, no X-Drop",
						res.StatusCode, e.Backend, got, e.Headers["X-Drop"])
				}
				seen[e.Backend]++
			}
			if seen["v1"] == 0 || seen["v2"] == 0 {
				t.Errorf("weighted 1:1 backends answered %v in 100 requests; want both", seen)
			}
		})
	}
	before := p.Metrics().Requests("test/r/0/named", "test/v1", 200)
	beforeUnnamed := p.Metrics().Requests("test/r/1", "test/v1", 200)
	do(t, h1Client(), "GET", proxyURL(port, "/named"), "app.example", nil)
	do(t, h1Client(), "GET", proxyURL(port, "/unnamed"), "app.example", nil)
	if got := p.Metrics().Requests("test/r/0/named", "test/v1", 200); got != before+1 {
		t.Errorf("requests{route=test/r/0/named} = %d after one request; want %d", got, before+1)
	}
	if got := p.Metrics().Requests("test/r/1", "test/v1", 200); got != beforeUnnamed+1 {
		t.Errorf("requests{route=test/r/1} = %d after one request; want %d", got, beforeUnnamed+1)
	}
}

// TestWebSocketThroughProxy is HTTPRouteBackendProtocolWebSocket's check on loopback: a
// WebSocket handshake through the proxy reaches an echoing backend (a Service port with
// appProtocol kubernetes.io/ws is an ordinary HTTP/1.1 backend to the reference), and text and
// binary frames come back unchanged, as the upstream test sends them.
func TestWebSocketThroughProxy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	b := ir.Backend{Name: "test/ws", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
	port := freePort(t)
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "ws"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b}}}}}}))

	cfg, err := websocket.NewConfig("ws://127.0.0.1:"+strconv.Itoa(int(port))+"/ws", "ws://gateway/test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dialer = &net.Dialer{Timeout: 5 * time.Second}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket handshake through the proxy: %v", err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		text := "Websocket Support! " + strconv.Itoa(i)
		var gotText string
		if err := websocket.Message.Send(ws, text); err != nil {
			t.Fatalf("send text: %v", err)
		}
		if err := websocket.Message.Receive(ws, &gotText); err != nil || gotText != text {
			t.Fatalf("text frame: got %q (%v); want %q", gotText, err, text)
		}
		bin := []byte{1, 2, 3, 4, 5, 6, byte(i)}
		var gotBin []byte
		if err := websocket.Message.Send(ws, bin); err != nil {
			t.Fatalf("send binary: %v", err)
		}
		if err := websocket.Message.Receive(ws, &gotBin); err != nil || !bytes.Equal(gotBin, bin) {
			t.Fatalf("binary frame: got %v (%v); want %v", gotBin, err, bin)
		}
	}
}

// TestHTTPListenerIsolation is GatewayHTTPListenerIsolation's matrix on loopback: four
// listeners share a port, each with one route; a request is matched only against the routes
// of the most specific listener for its host, never falling through to a less specific one.
func TestHTTPListenerIsolation(t *testing.T) {
	t.Parallel()
	v1 := startBackend(t, "v1")
	port := freePort(t)
	type lis struct{ name, hostname, path string }
	all := []lis{{"empty-hostname", "", "/empty-hostname"}, {"wildcard-example-com", "*.example.com", "/wildcard-example-com"},
		{"wildcard-foo-example-com", "*.foo.example.com", "/wildcard-foo-example-com"}, {"abc-foo-example-com", "abc.foo.example.com", "/abc-foo-example-com"}}
	var ls []ir.Listener
	for _, l := range all {
		ls = append(ls, ir.Listener{Name: l.name, Port: port, Protocol: ir.ProtocolHTTP, Hostname: l.hostname, HTTPRoutes: []ir.HTTPRoute{{
			RouteMeta: ir.RouteMeta{Namespace: "test", Name: "attaches-to-" + l.name},
			Rules:     []ir.HTTPRule{{Matches: []ir.HTTPMatch{{Path: prefix(l.path)}}, Backends: []ir.Backend{v1.irBackend(1)}}}}}})
	}
	startProxy(t, Options{}, snapshot(1, ls...))
	c := h1Client()
	for i, host := range []string{"bar.com", "bar.example.com", "bar.foo.example.com", "abc.foo.example.com"} {
		for j, l := range all {
			want := 404
			if i == j {
				want = 200
			}
			if res, _ := do(t, c, "GET", proxyURL(port, l.path), host, nil); res.StatusCode != want {
				t.Errorf("GET %s%s: %d; want %d", host, l.path, res.StatusCode, want)
			}
		}
	}
}
