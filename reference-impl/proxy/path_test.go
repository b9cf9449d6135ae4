package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in   string
		want       string // "" when refused
		wantStatus int    // status of a refusal
	}{
		{"ordinary path unchanged", "/foo/bar", "/foo/bar", 0},
		{"trailing slash kept", "/foo/", "/foo/", 0},
		{"root", "/", "/", 0},
		{"empty is root", "", "/", 0},
		{"sub-delims kept raw", "/a!$&'()*+,;=:@b", "/a!$&'()*+,;=:@b", 0},
		{"dotfile is not a dot segment", "/.well-known/x", "/.well-known/x", 0},
		{"three dots is not a dot segment", "/a/.../b", "/a/.../b", 0},
		{"dot-dot climbs out of public", "/public/../admin", "/admin", 0},
		{"encoded dot-dot", "/public/%2e%2e/admin", "/admin", 0},
		{"mixed case encoded dot-dot", "/public/%2E%2e/admin", "/admin", 0},
		{"half encoded dot-dot", "/public/.%2E/admin", "/admin", 0},
		{"double slash", "//admin", "/admin", 0},
		{"many slashes", "/a///b//", "/a/b/", 0},
		{"single dot", "/a/./b", "/a/b", 0},
		{"trailing dot", "/a/.", "/a/", 0},
		{"trailing dot-dot", "/a/b/..", "/a/", 0},
		{"dot-dot above root", "/..", "/", 0},
		{"dot-dots above root", "/../../etc/passwd", "/etc/passwd", 0},
		{"unreserved escapes decoded", "/%7Euser/%41%62c", "/~user/Abc", 0},
		{"reserved escape kept, hex upper-cased", "/a%3fb%3Ac", "/a%3Fb%3Ac", 0},
		{"escaped percent stays escaped", "/a%252e%252e/b", "/a%252e%252e/b", 0},
		{"space", "/a%20b", "/a%20b", 0},
		{"UTF-8", "/caf%C3%A9", "/caf%C3%A9", 0},
		{"raw bytes escaped", "/a b\xc3\xa9", "/a%20b%C3%A9", 0},
		{"encoded slash", "/a/%2F../b", "", 400},
		{"encoded slash lower case", "/a%2fb", "", 400},
		{"encoded backslash", "/a%5Cb", "", 400},
		{"backslash", "/a\\..\\admin", "", 400},
		{"double backslash", "\\\\", "", 400},
		{"NUL", "/a\x00b", "", 400},
		{"encoded NUL", "/a%00b", "", 400},
		{"encoded newline", "/a%0D%0Ab", "", 400},
		{"DEL", "/a\x7fb", "", 400},
		{"percent at the end", "/a%", "", 400},
		{"one hex digit at the end", "/a%2", "", 400},
		{"not hex", "/a%zz", "", 400},
		{"overlong UTF-8 dot", "/a/%C0%AE%C0%AE/b", "", 400},
		{"invalid UTF-8", "/a%FF", "", 400},
		{"dot-dot with path parameter", "/public/..;/admin", "", 400},
		{"encoded dot-dot with path parameter", "/public/%2e%2e;x=1/admin", "", 400},
		{"dot with path parameter", "/a/.;/b", "", 400},
		{"relative", "a/b", "", 400},
		{"overlong path", "/" + strings.Repeat("a", maxPathBytes), "", 414},
		{"longest accepted path", "/" + strings.Repeat("a", maxPathBytes-1), "/" + strings.Repeat("a", maxPathBytes-1), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalizePath(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("normalizePath(%q): got %q; want refused with %d", tc.in, got, tc.wantStatus)
				}
				if err.status != tc.wantStatus || err.reason == "" {
					t.Errorf("normalizePath(%q): got status %d reason %q; want %d with a reason", tc.in, err.status, err.reason, tc.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalizePath(%q): refused (%d %s); want %q", tc.in, err.status, err.reason, tc.want)
			}
			if got != tc.want {
				t.Errorf("normalizePath(%q): got %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestNormalizePathNoAllocOnOrdinaryPaths keeps the common case free.
func TestNormalizePathNoAllocOnOrdinaryPaths(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { normalizePath("/api/v1/items/42") }); n != 0 {
		t.Errorf("allocations for an ordinary path: got %v; want 0", n)
	}
}

// FuzzNormalizePath checks normalizePath on arbitrary input: it never panics; an accepted path
// starts with /, has no empty or dot segments, only valid escapes, no encoded slash or
// backslash, and normalising it again changes nothing.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/public/../admin", "/public/%2e%2e/admin", "//admin", "/a/./b", "/a/%2F../b",
		"\\\\", "/a\x00", "/..", "/a%", "/%7e%41", "/a/.;/b", "/caf%C3%A9", "/%C0%AE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := normalizePath(in)
		if err != nil {
			if err.status != http.StatusBadRequest && err.status != http.StatusRequestURITooLong {
				t.Fatalf("normalizePath(%q): status %d; want 400 or 414", in, err.status)
			}
			return
		}
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("normalizePath(%q) = %q: does not start with /", in, got)
		}
		for _, seg := range strings.Split(got[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("normalizePath(%q) = %q: has a dot segment", in, got)
			}
		}
		if strings.Contains(got, "//") {
			t.Fatalf("normalizePath(%q) = %q: has an empty segment", in, got)
		}
		dec, derr := url.PathUnescape(got)
		if derr != nil {
			t.Fatalf("normalizePath(%q) = %q: invalid escapes: %v", in, got, derr)
		}
		if strings.Count(dec, "/") != strings.Count(got, "/") || strings.Contains(dec, "\\") {
			t.Fatalf("normalizePath(%q) = %q: decodes to %q, with a slash or backslash that was escaped", in, got, dec)
		}
		for _, seg := range strings.Split(dec[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("normalizePath(%q) = %q: decodes to a dot segment in %q", in, got, dec)
			}
		}
		again, err := normalizePath(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: normalizePath(%q) = %q, then %q (%v)", in, got, again, err)
		}
	})
}

// TestHostilePaths sends hostile request targets on raw connections to a proxy with a /public
// route and an /admin route: each must reach the backend the normalised path selects, with
// the normalised path, or be refused with a body that says why and reach no backend.
func TestHostilePaths(t *testing.T) {
	t.Parallel()
	public, admin := startBackend(t, "public"), startBackend(t, "admin")
	port := freePort(t)
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{
			{Matches: []ir.HTTPMatch{{Path: prefix("/public")}}, Backends: []ir.Backend{public.irBackend(1)}},
			{Matches: []ir.HTTPMatch{{Path: exact("/admin")}}, Backends: []ir.Backend{admin.irBackend(1)}},
		}}}}))
	tests := []struct {
		target      string
		wantCode    int
		wantBackend string // "" when refused
		wantURI     string // request-target at the backend
		wantBody    string // part of the refusal body
	}{
		{"/public/x?q=1", 200, "public", "/public/x?q=1", ""},
		{"/public/../admin", 200, "admin", "/admin", ""},
		{"/public/%2e%2e/admin", 200, "admin", "/admin", ""},
		{"/public/%2E%2e/admin", 200, "admin", "/admin", ""},
		{"//admin", 200, "admin", "/admin", ""},
		{"/public/./x/%7e", 200, "public", "/public/x/~", ""},
		{"/public/a%3fb?q=%2F", 200, "public", "/public/a%3Fb?q=%2F", ""},
		{"/public/..", 404, "", "", "no route"},
		{"/public/%2F../admin", 400, "", "", "percent-encoded slash"},
		{"/public/%5c../admin", 400, "", "", "percent-encoded backslash"},
		{"/public/\\../admin", 400, "", "", "backslash"},
		{"/public/%00", 400, "", "", "control character"},
		{"/public/..;/admin", 400, "", "", "path parameter"},
		{"/public/%C0%AE%C0%AE/admin", 400, "", "", "UTF-8"},
		{"/public/" + strings.Repeat("a", maxPathBytes), 414, "", "", "longer than"},
	}
	// HTTP/2 takes the same path: the :path pseudo-header as sent.
	t.Run("h2c", func(t *testing.T) {
		for _, tc := range []struct{ path, raw, wantBackend, wantURI string }{
			{"/public/../admin", "/public/%2e%2e/admin", "admin", "/admin"},
			{"//admin", "", "admin", "/admin"},
		} {
			req, _ := http.NewRequest("GET", proxyURL(port, "/"), nil)
			req.URL.Path, req.URL.RawPath = tc.path, tc.raw
			res, err := h2cClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e echo
			json.NewDecoder(res.Body).Decode(&e)
			res.Body.Close()
			if res.ProtoMajor != 2 || e.Backend != tc.wantBackend || e.URI != tc.wantURI {
				t.Errorf("h2c %s: got %s from %q with %q; want HTTP/2 from %s with %q", req.URL.EscapedPath(), res.Proto, e.Backend, e.URI, tc.wantBackend, tc.wantURI)
			}
		}
	})
	for _, tc := range tests {
		t.Run(tc.target[:min(len(tc.target), 40)], func(t *testing.T) {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			hits := public.hits.Load() + admin.hits.Load()
			go io.WriteString(c, "GET "+tc.target+" HTTP/1.1\r\nHost: a\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantCode {
				t.Fatalf("status: got %d (%s); want %d", res.StatusCode, body, tc.wantCode)
			}
			if tc.wantBackend == "" {
				if !strings.Contains(string(body), tc.wantBody) {
					t.Errorf("body: got %q; want it to say %q", body, tc.wantBody)
				}
				if got := public.hits.Load() + admin.hits.Load() - hits; got != 0 {
					t.Errorf("backend hits: got %d; want 0", got)
				}
				return
			}
			var e echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("decode echo %q: %v", body, err)
			}
			if e.Backend != tc.wantBackend || e.URI != tc.wantURI {
				t.Errorf("got backend %s with %q; want %s with %q", e.Backend, e.URI, tc.wantBackend, tc.wantURI)
			}
		})
	}
}
