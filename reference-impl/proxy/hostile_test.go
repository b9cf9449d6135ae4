package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// TestHostileRequests sends malformed requests on a raw connection: each must get a 4xx (or
// 501 for an unknown transfer coding) from the proxy and never reach the backend.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	b := startBackend(t, "b")
	port := freePort(t)
	startProxy(t, Options{MaxHeaderBytes: 8 << 10}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b.irBackend(1)}}}}}}))
	tests := []struct {
		name, raw string
		wantCode  int
	}{
		{"conflicting Content-Length values", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"invalid Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"chunked and Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
		{"Content-Length and chunked, odd case", "POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunked with invalid Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n", 400},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"oversized headers", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"missing Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400},
		{"bare LF in header value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			before := b.hits.Load()
			go io.WriteString(c, tc.raw)
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != tc.wantCode {
				t.Errorf("status: got %d; want %d", res.StatusCode, tc.wantCode)
			}
			if after := b.hits.Load(); after != before {
				t.Errorf("backend hits: got %d more; want 0 (must never reach a backend)", after-before)
			}
		})
	}
	// Pipelined requests with Content-Length and chunked bodies must pass the framing tracker
	// untouched, and a conflicting request later on the same connection is still refused.
	t.Run("pipelined bodies then a conflicting request", func(t *testing.T) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		before := b.hits.Load()
		// The first body contains text that looks like a smuggled head; it is body, not a head.
		body1 := "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
		go io.WriteString(c, "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(len(body1))+"\r\n\r\n"+body1+
			"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"+
			"\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n"+
			"POST /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
		br := bufio.NewReader(c)
		var codes []int
		for range 4 {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes = append(codes, res.StatusCode)
		}
		if fmt.Sprint(codes) != "[200 200 200 400]" {
			t.Errorf("statuses: got %v; want [200 200 200 400]", codes)
		}
		if got := b.hits.Load() - before; got != 3 {
			t.Errorf("backend hits: got %d; want 3 (the conflicting request must not reach it)", got)
		}
		if e := b.last.Load(); e.Path != "/3" {
			t.Errorf("last request at backend: got %s; want /3", e.Path)
		}
	})
}
