package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// TestH1ServerMatchesNetHTTP sends the same raw byte streams to a proxy with h1Server and to
// one serving with net/http's server only (StdHTTP1Server), and requires the same answers
// (status, fields but Date, body, connection closed or not) and the same requests at the
// backend (method, request-target, Host, fields). Rows cover what h1Server serves itself and
// what it hands to net/http, including on a connection it served before.
func TestH1ServerMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	listener := func(port int32, b *testBackend) ir.Listener {
		return ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
			RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{
				{Matches: []ir.HTTPMatch{{Path: prefix("/mod")}}, Filters: []ir.Filter{
					{Type: ir.FilterRequestHeaderModifier, RequestHeaderModifier: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Set", Value: "s"}}, Add: []ir.Header{{Name: "X-Add", Value: "a"}}, Remove: []string{"X-Drop"}}},
					{Type: ir.FilterResponseHeaderModifier, ResponseHeaderModifier: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Res", Value: "r"}}, Remove: []string{"X-Backend"}}},
				}, Backends: []ir.Backend{b.irBackend(1)}},
				{Matches: []ir.HTTPMatch{{Path: prefix("/rewrite")}}, Filters: []ir.Filter{
					{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{Hostname: ptrTo("rewritten.example"), Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, ReplacePrefixMatch: "/new"}}},
				}, Backends: []ir.Backend{b.irBackend(1)}},
				{Matches: []ir.HTTPMatch{{Path: prefix("/redirect")}}, Filters: []ir.Filter{
					{Type: ir.FilterRequestRedirect, RequestRedirect: &ir.Redirect{Hostname: ptrTo("elsewhere.example")}},
				}},
				{Matches: []ir.HTTPMatch{{Path: prefix("/"), Headers: []ir.HeaderMatch{{Type: ir.MatchExact, Name: "X-Route", Value: "none"}}}}},
				{Matches: []ir.HTTPMatch{{Path: prefix("/")}}, Backends: []ir.Backend{b.irBackend(1)}},
			}}}}
	}
	get := func(target string, fields ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: gw.example\r\n" + strings.Join(fields, "") + "\r\n"
	}
	tests := []struct{ name, raw string }{
		{"plain GET", get("/a/b?x=1&y=2")},
		{"fields kept, hop-by-hop and forwarded fields dropped", get("/a", "User-Agent: t\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\nKeep-Alive: 5\r\nConnection: keep-alive\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nProxy-Authorization: x\r\n")},
		{"odd field name case and spacing", get("/a", "x-lower:   v  \r\nX-TAB:\tv\t\r\n")},
		{"HEAD", "HEAD /a HTTP/1.1\r\nHost: gw.example\r\n\r\n"},
		{"Connection: close", get("/a", "Connection: close\r\n")},
		{"path normalised", get("/a/./b/../c//d")},
		{"escaped path", get("/a%20b/%7Euser")},
		{"path refused", get("/a/%2F/b")},
		{"empty query", get("/a?")},
		{"request and response header modifiers", get("/mod", "X-Drop: d\r\nX-Set: old\r\n")},
		{"URL rewrite", get("/rewrite/rest?q=1")},
		{"redirect", get("/redirect/x")},
		{"rule without backends", get("/a", "X-Route: none\r\n")},
		{"no listener for host", "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n"},
		{"pipelined", get("/1") + get("/2") + get("/3", "Connection: close\r\n")},
		{"POST with a body, then GET (handed to net/http)", "POST /p HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 5\r\n\r\nhello" + get("/after")},
		{"GET, then POST on the same connection", get("/before") + "POST /p HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 2\r\n\r\nhi" + get("/after")},
		{"chunked POST", "POST /p HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"Content-Length and Transfer-Encoding after a GET", get("/ok") + "POST / HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\nHost: gw.example\r\n\r\n"},
		{"bare LF", "GET /a HTTP/1.1\nHost: gw.example\n\n"},
		{"obs-fold", get("/a", "X-Fold: a\r\n b\r\n")},
		{"head longer than the read buffer", get("/a", "Cookie: "+strings.Repeat("c", 6000)+"\r\n")},
		{"head over MaxHeaderBytes", get("/a", "Cookie: "+strings.Repeat("c", 16<<10)+"\r\n")},
		{"absolute-form target", "GET http://gw.example/a HTTP/1.1\r\nHost: gw.example\r\n\r\n"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: gw.example\r\n\r\n"},
		{"DELETE", "DELETE /a HTTP/1.1\r\nHost: gw.example\r\n\r\n"},
		{"Expect", "POST /p HTTP/1.1\r\nHost: gw.example\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"},
		{"Upgrade declined", get("/a", "Upgrade: websocket\r\nConnection: Upgrade\r\n") + get("/b")},
		{"Connection naming a field", get("/a", "Connection: X-Hop\r\nX-Hop: 1\r\n")},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"space before colon", get("/", "X-A : b\r\n")},
		{"CR in a value", get("/", "X-A: b\rc\r\n")},
		{"NUL in a value", get("/", "X-A: b\x00c\r\n")},
		{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: gw.example\r\n\r\n"},
		{"lower-case method", "get / HTTP/1.1\r\nHost: gw.example\r\n\r\n"},
		{"empty lines first", "\r\n\r\n" + get("/a")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A backend and two proxies per row: rows run in parallel.
			b := startBackend(t, "b")
			fast, std := freePort(t), freePort(t)
			startProxy(t, Options{MaxHeaderBytes: 8 << 10}, snapshot(1, listener(fast, b)))
			startProxy(t, Options{MaxHeaderBytes: 8 << 10, StdHTTP1Server: true}, snapshot(1, listener(std, b)))
			want, wantSeen := exchangeRaw(t, std, tc.raw, b)
			got, gotSeen := exchangeRaw(t, fast, tc.raw, b)
			// How many 100 Continue a client gets for a body sent at once depends on timing
			// in net/http (its own, and the backend's forwarded through the ReverseProxy).
			got = strings.ReplaceAll(got, "100 chunked=false close=false\n  body: \"\"\n", "")
			want = strings.ReplaceAll(want, "100 chunked=false close=false\n  body: \"\"\n", "")
			// Redirects name the port the request came to.
			got = strings.ReplaceAll(got, ":"+strconv.Itoa(int(fast)), ":PORT")
			want = strings.ReplaceAll(want, ":"+strconv.Itoa(int(std)), ":PORT")
			if got != want {
				t.Errorf("answers differ\nh1Server:\n%s\nnet/http:\n%s", got, want)
			}
			if gotSeen != wantSeen {
				t.Errorf("requests at the backend differ\nh1Server:\n%s\nnet/http:\n%s", gotSeen, wantSeen)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// exchangeRaw writes raw on a new connection and returns the answers read until the proxy
// closes the connection or goes quiet (5 s for the first answer, then 0.5 s), each as status, sorted fields without
// Date, and body; and the last request the backend saw, described the same way.
func exchangeRaw(t *testing.T, port int32, raw string, b *testBackend) (answers, seen string) {
	t.Helper()
	b.last.Store(nil)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var out strings.Builder
	method := "GET"
	if strings.HasPrefix(raw, "HEAD ") {
		method = "HEAD"
	}
	for {
		// The first answer may take long on a loaded machine under -race; the answers to
		// pipelined requests follow it at once.
		wait := 500 * time.Millisecond
		if out.Len() == 0 {
			wait = 5 * time.Second
		}
		c.SetReadDeadline(time.Now().Add(wait))
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				out.WriteString("(connection open)\n")
			} else {
				out.WriteString("(connection closed)\n")
			}
			break
		}
		body, berr := io.ReadAll(res.Body)
		res.Body.Close()
		if berr != nil {
			fmt.Fprintf(&out, "(broken answer: %d %q: %v)\n", res.StatusCode, body, berr)
			break
		}
		var keys []string
		for k := range res.Header {
			if k != "Date" {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		fmt.Fprintf(&out, "%d chunked=%v close=%v\n", res.StatusCode, slices.Equal(res.TransferEncoding, []string{"chunked"}), res.Close)
		for _, k := range keys {
			fmt.Fprintf(&out, "  %s: %q\n", k, res.Header[k])
		}
		var e echo
		if json.Unmarshal(body, &e) == nil && e.Backend != "" {
			// The echo of the request: compared below through the backend's record.
			fmt.Fprintf(&out, "  body: echo of %s %s\n", e.Method, e.URI)
		} else {
			fmt.Fprintf(&out, "  body: %q\n", body)
		}
		if res.Close {
			break
		}
	}
	if _, ok := res(b); ok {
		seen = describeEcho(b.last.Load())
	}
	return out.String(), seen
}

func res(b *testBackend) (*echo, bool) { e := b.last.Load(); return e, e != nil }

func describeEcho(e *echo) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s %s host=%s proto=%s body=%q\n", e.Method, e.URI, e.Host, e.Proto, e.Body)
	var keys []string
	for k := range e.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&s, "  %s: %q\n", k, e.Headers[k])
	}
	return s.String()
}

// TestH1ServerClientGone checks that a request waiting for a slow backend is given up when
// its client closes the connection (net/http's server notices through its background read;
// h1Server through its watcher): the backend connection is closed, not kept for later.
func TestH1ServerClientGone(t *testing.T) {
	t.Parallel()
	var closed atomic.Int64
	b, conns, _ := startScriptBackend(t, func(n int64, c net.Conn, _ *http.Request) bool {
		// Answer after 2 s, unless the proxy closes the connection first.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed.Add(1)
			return false
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b}}}}}}))
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	deadline := time.Now().Add(time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if closed.Load() != 1 || conns.Load() != 1 {
		t.Errorf("backend connections closed by the proxy within 1 s of the client leaving: %d of %d; want 1 of 1", closed.Load(), conns.Load())
	}
	if got := p.Metrics().Requests("test/r/0", "test/script", 499); got != 1 {
		var sb strings.Builder
		p.Metrics().WriteText(&sb)
		t.Errorf("requests counted 499: got %d; want 1\n%s", got, sb.String())
	}
}

// TestH1ServerRelaysLikeReverseProxy sends a GET through h1Server's relay and through
// net/http's server with ReverseProxy (StdHTTP1Server) to backends answering with raw bytes,
// well-formed and not, and requires the same answers at the client.
func TestH1ServerRelaysLikeReverseProxy(t *testing.T) {
	t.Parallel()
	// Rows whose answer breaks off after its head (broken: true) must break off for the
	// client on both paths; where net/http's server had flushed part of it may differ.
	tests := []struct {
		name, answer string
		broken       bool
	}{
		{"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;ext=1\r\nabc\r\n0\r\n\r\n", false},
		{"until close", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil close", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"no reason phrase", "HTTP/1.1 201\r\nContent-Length: 2\r\n\r\nok", false},
		{"unknown status", "HTTP/1.1 299 Odd\r\nContent-Length: 2\r\n\r\nok", false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false},
		{"hop-by-hop fields", "HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nUpgrade: h2\r\nProxy-Authenticate: x\r\nContent-Length: 2\r\n\r\nok", false},
		{"bare LF head", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false},
		{"repeated equal Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false},
		{"conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false},
		{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", false},
		{"Content-Length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
		{"unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", false},
		{"CR in a field value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", false},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nok", false},
		{"malformed status line", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", true},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", true},
		{"endless chunk-size line", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 64<<10), true},
		{"chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokok\r\n0\r\n\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _ := startRawBackend(t, func(int64, *http.Request) (string, bool) { return tc.answer, true })
			listener := func(port int32) ir.Listener {
				return ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
					RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b}}}}}}
			}
			fast, std := freePort(t), freePort(t)
			startProxy(t, Options{}, snapshot(1, listener(fast)))
			startProxy(t, Options{StdHTTP1Server: true}, snapshot(1, listener(std)))
			raw := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
			want, _ := exchangeRaw(t, std, raw, &testBackend{})
			got, _ := exchangeRaw(t, fast, raw, &testBackend{})
			// net/http's server sniffs a Content-Type for an answer without one; the relay
			// does not change the backend's fields (as nginx and Envoy).
			want = strings.ReplaceAll(want, "  Content-Type: [\"text/plain; charset=utf-8\"]\n", "")
			if tc.broken {
				if !brokenOff(got) || !brokenOff(want) {
					t.Errorf("want the answer broken off on both paths\nh1Server:\n%s\nnet/http:\n%s", got, want)
				}
				return
			}
			if got != want {
				t.Errorf("answers differ\nh1Server:\n%s\nnet/http:\n%s", got, want)
			}
		})
	}
}

// brokenOff reports whether an exchangeRaw record shows no complete answer: a broken body, or
// the connection closed before any answer.
func brokenOff(record string) bool {
	return strings.Contains(record, "(broken answer") || record == "(connection closed)\n"
}

// FuzzH1ServerParse checks that every request head h1Server parses itself is one net/http's
// server accepts too, parsed to the same Request (method, target, URL, Host, fields, Close).
func FuzzH1ServerParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /a/b?c=d HTTP/1.1\r\nHost: a:80\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET /a!b/(c)*'?x?y HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?? HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET //a/%41b|c HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%2e%2e/x HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\nPragma: no-cache\r\n\r\n",
		"GET /?a HTTP/1.1\r\nHost: a\r\nUser-Agent: \t x \t\r\nConnection: keep-alive, close\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		i := strings.Index(raw, "\r\n\r\n")
		if i < 0 {
			return
		}
		head := raw[:i+4]
		c := &h1Conn{remote: "192.0.2.1:1234"}
		got := c.parse([]byte(head))
		if got == nil {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("h1Server parsed %q; net/http refuses it: %v", head, err)
		}
		// What net/http's server adds to ReadRequest (server.go readRequest).
		if hosts := want.Header["Host"]; len(hosts) > 1 || !httpguts.ValidHostHeader(want.Host) {
			t.Fatalf("h1Server parsed %q; net/http's server refuses its Host %q", head, want.Host)
		}
		for k, vv := range want.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("h1Server parsed %q; net/http's server refuses field name %q", head, k)
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("h1Server parsed %q; net/http's server refuses field value %q", head, v)
				}
			}
		}
		delete(want.Header, "Host")
		if want.ContentLength != 0 || len(want.TransferEncoding) > 0 {
			t.Fatalf("h1Server parsed %q; net/http sees a body (length %d, coding %v)", head, want.ContentLength, want.TransferEncoding)
		}
		type view struct {
			Method, RequestURI, URL, Host, Proto string
			URLFields                            url.URL // Path, RawPath, RawQuery, ForceQuery, ...
			Header                               http.Header
			Close                                bool
		}
		g := view{got.Method, got.RequestURI, got.URL.String(), got.Host, got.Proto, *got.URL, got.Header, got.Close}
		w := view{want.Method, want.RequestURI, want.URL.String(), want.Host, want.Proto, *want.URL, want.Header, want.Close}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%q parsed differently:\nh1Server: %+v\nnet/http: %+v", head, g, w)
		}
	})
}

// TestH1ServerSlowAnswersKeepAlive runs requests slower than h1WatchDelay on one keep-alive
// connection, one at a time and pipelined, so that the watcher starts and is stopped for
// each: every answer must arrive, in order, and the connection stay usable.
func TestH1ServerSlowAnswersKeepAlive(t *testing.T) {
	t.Parallel()
	_, _, c, br := oneRouteConn(t)
	req := func(i int) string {
		return fmt.Sprintf("GET /slow/%d HTTP/1.1\r\nHost: a\r\nX-Delay: %dms\r\n\r\n", i, 5+3*(i%4))
	}
	check := func(i int) {
		t.Helper()
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		var e echo
		if err != nil || json.Unmarshal(body, &e) != nil || e.Method != "GET" || e.Path != fmt.Sprintf("/slow/%d", i) {
			t.Fatalf("answer %d: got %d %q (%v); want the echo of /slow/%d", i, res.StatusCode, body, err, i)
		}
	}
	for i := range 20 {
		io.WriteString(c, req(i))
		check(i)
	}
	var burst strings.Builder
	for i := 20; i < 30; i++ {
		burst.WriteString(req(i))
	}
	io.WriteString(c, burst.String())
	for i := 20; i < 30; i++ {
		check(i)
	}
	// A request written in two parts while the previous answer is awaited.
	io.WriteString(c, req(30)+"GET /slow/31 HTTP/1.1\r\nHost:")
	time.Sleep(30 * time.Millisecond)
	io.WriteString(c, " a\r\n\r\n")
	check(30)
	check(31)
	// The next request arriving while the watcher reads: its first byte is kept.
	io.WriteString(c, "GET /slow/32 HTTP/1.1\r\nHost: a\r\nX-Delay: 40ms\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, req(33))
	check(32)
	check(33)
	// The next request arriving during a wait too short for the watcher: the poller's
	// report of it is kept (readSession), so it is read without waiting for more.
	io.WriteString(c, "GET /slow/34 HTTP/1.1\r\nHost: a\r\nX-Delay: 3ms\r\n\r\n")
	time.Sleep(time.Millisecond)
	io.WriteString(c, req(35))
	check(34)
	check(35)
}

// TestH1ServerWatchDescriptorPerWatch checks that the watcher's second descriptor of a
// client socket (rawIO.dup, within a read session) is made for a watch and closed when the
// wait ends. Kept for the connection's life, it stayed registered with the poller, which
// then reported every later request on that connection twice, once for nobody: about 5% of
// the proxy's CPU per request (hack/bench-proxy.sh).
func TestH1ServerWatchDescriptorPerWatch(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("read sessions (rawio_linux.go) are Linux only")
	}
	p, port, c, br := oneRouteConn(t)
	// watchConn reports whether the proxy's side of c has a watcher's descriptor open.
	watchConn := func() bool {
		p.mu.Lock()
		s := p.servers[port].h1
		p.mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		for hc := range s.conns {
			hc.wmu.Lock()
			open := hc.wconn != nil
			hc.wmu.Unlock()
			if open {
				return true
			}
		}
		return false
	}
	for i := range 3 {
		io.WriteString(c, fmt.Sprintf("GET /slow/%d HTTP/1.1\r\nHost: a\r\nX-Delay: 300ms\r\n\r\n", i))
		// The wait outlasts h1WatchDelay: a watch must start, with its descriptor.
		deadline := time.Now().Add(250 * time.Millisecond)
		for !watchConn() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !watchConn() {
			t.Fatalf("request %d: no watcher's descriptor while the request waited 250 ms; want one (the watch reads it)", i)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("answer %d: got %s; want 200", i, res.Status)
		}
		if watchConn() {
			t.Fatalf("after answer %d: the watcher's descriptor is still open; want it closed when the wait ends", i)
		}
	}
}

// TestWriteStatusLineAndField pins the head lines h1Server writes: a status line as net/http
// writes it (with its reason phrase, or "status code N" for a code without one), and a field
// whose value is trimmed and has CR and LF turned into spaces.
func TestWriteStatusLineAndField(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	line := func(f func()) string {
		b.Reset()
		f()
		bw.Flush()
		return b.String()
	}
	for _, tc := range []struct {
		code int
		want string
	}{
		{200, "HTTP/1.1 200 OK\r\n"},
		{103, "HTTP/1.1 103 Early Hints\r\n"},
		{404, "HTTP/1.1 404 Not Found\r\n"},
		{299, "HTTP/1.1 299 status code 299\r\n"},
		{599, "HTTP/1.1 599 status code 599\r\n"},
		{999, "HTTP/1.1 999 status code 999\r\n"},
	} {
		if got := line(func() { writeStatusLine(bw, tc.code) }); got != tc.want {
			t.Errorf("writeStatusLine(%d): got %q; want %q", tc.code, got, tc.want)
		}
	}
	for _, tc := range []struct{ v, want string }{
		{"a b", "K: a b\r\n"},
		{" \ta\t ", "K: a\r\n"},
		{"a\r\nb", "K: a  b\r\n"},
		{"a\nb\rc", "K: a b c\r\n"},
		{"", "K: \r\n"},
	} {
		if got := line(func() { writeField(bw, "K", tc.v) }); got != tc.want {
			t.Errorf("writeField(%q): got %q; want %q", tc.v, got, tc.want)
		}
	}
}

// oneRouteConn starts a backend and a proxy whose one HTTP listener routes everything to it, and
// dials the listener: the proxy, the listener's port, the client connection (closed with the
// test, 20 s deadline) and its reader.
func oneRouteConn(t *testing.T) (*Proxy, int32, net.Conn, *bufio.Reader) {
	t.Helper()
	b := startBackend(t, "b")
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b.irBackend(1)}}}}}}))
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return p, port, c, bufio.NewReader(c)
}
