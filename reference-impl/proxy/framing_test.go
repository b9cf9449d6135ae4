package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// runFraming feeds in to a framing tracker in pieces of at most step bytes and returns what
// the server would read.
func runFraming(in []byte, step int) []byte {
	c := newFramingConn(nil, 0)
	for len(in) > 0 {
		n := min(step, len(in))
		c.feed(in[:n])
		in = in[n:]
	}
	return append(c.pending, c.line...)
}

func TestFramingSplitIndependent(t *testing.T) {
	t.Parallel()
	stream := []byte("POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /4 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	want := append([]byte(nil), stream[:bytes.Index(stream, []byte("POST /4"))]...)
	want = append(want, rejectHead...)
	for _, step := range []int{1, 2, 3, 7, 64, len(stream)} {
		if got := runFraming(stream, step); !bytes.HasPrefix(got, want) {
			t.Errorf("fed %d bytes at a time: got %q; want it to start with %q", step, got, want)
		}
	}
}

// FuzzFraming checks that the framing tracker is transparent: whatever bytes arrive, in
// whatever pieces, the server reads exactly them, except that from a refused head on it reads
// the rejection line instead.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 1)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 5)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 {
			step = 1
		}
		got := runFraming(in, step)
		if i := bytes.Index(got, rejectHead); i >= 0 {
			if !bytes.HasPrefix(in, got[:i]) {
				t.Fatalf("bytes before the rejection differ from the input:\n got %q\nwant prefix of %q", got[:i], in)
			}
			return
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("tracker changed the stream:\n got %q\nwant %q", got, in)
		}
	})
}

// httpSpan is one request as net/http's server parser reads it from a stream.
type httpSpan struct {
	start, end int
	clAndTE    bool // its head has both Content-Length and Transfer-Encoding
}

// netHTTPSpans reads stream with http.ReadRequest, as the server does, and returns the span
// of each request it accepts, stopping at the first it refuses (the server answers that one
// with an error and closes the connection); stop is where that refused request starts.
func netHTTPSpans(stream []byte) (spans []httpSpan, stop int) {
	rd := bytes.NewReader(stream)
	br := bufio.NewReader(rd)
	off := func() int { return len(stream) - rd.Len() - br.Buffered() }
	for {
		start := off()
		if start == len(stream) {
			return spans, start
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return spans, start
		}
		headEnd := off()
		// The head as net/http's own header parser reads it (obs-fold, case, duplicates);
		// ReadRequest leaves Host out of req.Header, the server checks it.
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(stream[start:headEnd])))
		tp.ReadLine()
		h, _ := tp.ReadMIMEHeader()
		if !serverAccepts(req, h) || headEnd-start > headLimit(testMaxHeaderBytes) {
			return spans, start
		}
		if req.Method == "PRI" {
			return spans, len(stream) // HTTP/2 with prior knowledge from here
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return spans, start
		}
		spans = append(spans, httpSpan{start, off(), len(h["Content-Length"]) > 0 && len(h["Transfer-Encoding"]) > 0})
		if req.Close || req.Method == http.MethodConnect {
			// The server reads nothing more as HTTP/1: what follows is never parsed.
			return spans, off()
		}
	}
}

// testMaxHeaderBytes is the MaxHeaderBytes of the server the differential test models.
const testMaxHeaderBytes = 64 << 10

// serverAccepts repeats the checks http.Server makes on a request http.ReadRequest returned
// before a handler sees it (server.go readRequest): valid field names and values, one valid
// Host, required on HTTP/1.1.
func serverAccepts(req *http.Request, h textproto.MIMEHeader) bool {
	hosts, haveHost := h["Host"]
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != "PRI" && req.Method != http.MethodConnect {
		return false
	}
	if len(hosts) > 1 || len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return false
	}
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// short quotes b for a failure message, eliding the middle of long streams.
func short(b []byte) string {
	if len(b) <= 300 {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:150])) + fmt.Sprintf(" ...(%d bytes)... ", len(b)-300) + strconv.Quote(string(b[len(b)-150:]))
}

// checkAgainstNetHTTP checks the tracker's output for stream against net/http's reading of
// it: bytes of requests net/http accepts pass unchanged, and the first request whose head
// has both Content-Length and Transfer-Encoding is replaced by rejectHead, exactly where
// net/http's parser says it starts (so the tracker agrees with it on every boundary before).
func checkAgainstNetHTTP(t *testing.T, stream, got []byte) {
	t.Helper()
	spans, stop := netHTTPSpans(stream)
	for _, s := range spans {
		if !s.clAndTE {
			continue
		}
		want := append(append([]byte(nil), stream[:s.start]...), rejectHead...)
		if !bytes.HasPrefix(got, want) {
			t.Fatalf("request at byte %d has Content-Length and Transfer-Encoding: tracker output\n %s\nwant it to start with\n %s", s.start, short(got), short(want))
		}
		return
	}
	// Nothing to refuse: whatever net/http would serve must pass unchanged and unrefused.
	if i := bytes.Index(got, rejectHead); i >= 0 && i < stop {
		t.Fatalf("tracker refused the request at byte %d; net/http accepts every request up to byte %d of\n %s", i, stop, short(stream))
	}
	if !bytes.HasPrefix(got, stream[:min(stop, len(got))]) || len(got) < stop {
		t.Fatalf("tracker changed bytes net/http accepts:\n got %s\nwant prefix %s", short(got), short(stream[:stop]))
	}
}

// hostileFraming is a corpus of request streams that probe HTTP/1 framing.
// refuse marks the streams in which the tracker must refuse a request (net/http's parser
// finds one with both Content-Length and Transfer-Encoding in them).
var hostileFraming = []struct {
	name, stream string
	refuse       bool
}{
	{"CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
	{"TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", true},
	{"CL+TE after a CL body holding a head", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 46\r\n\r\nGET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
	{"CL+TE after a chunked body with extensions and trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3;a=b\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
	{"duplicate equal CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"duplicate different CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", false},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", false},
	{"CL with plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", false},
	{"obs-fold TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", true},
	{"obs-fold hides a CL", "POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	{"bare LF line ends", "POST / HTTP/1.1\nHost: a\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\n\n", false},
	{"bare LF then CRLF", "GET / HTTP/1.1\nHost: a\r\n\nGET /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
	{"bare CR", "POST / HTTP/1.1\r\nHost: a\rContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	{"space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc", false},
	{"tab in TE value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", true},
	{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", false},
	{"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", false},
	{"TE upper case", "POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"huge chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", false},
	{"negative chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", false},
	{"chunk size with spaces", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", false},
	{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"pipelined plain requests", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"HTTP/1.0 with CL+TE", "POST / HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
	{"huge header", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", false},
	{"huge header then CL+TE", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	{"NUL in header", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x00\r\n\r\n", false},
	{"Upgrade then CL+TE", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
	{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false},
}

// TestFramingAgainstNetHTTP is the differential test: on every stream of the hostile corpus,
// fed in pieces of several sizes, the tracker must agree with net/http's own parser on where
// each request starts and refuse exactly the first one with both Content-Length and
// Transfer-Encoding.
func TestFramingAgainstNetHTTP(t *testing.T) {
	t.Parallel()
	for _, tc := range hostileFraming {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spans, _ := netHTTPSpans([]byte(tc.stream))
			if found := slices.ContainsFunc(spans, func(s httpSpan) bool { return s.clAndTE }); found != tc.refuse {
				t.Fatalf("net/http finds a request with Content-Length and Transfer-Encoding: got %v; want %v (the corpus or the model is wrong)", found, tc.refuse)
			}
			for _, step := range []int{1, 5, 4096, len(tc.stream)} {
				c := newFramingConn(nil, testMaxHeaderBytes)
				got := runFramingConn(c, []byte(tc.stream), step)
				checkAgainstNetHTTP(t, []byte(tc.stream), got)
				if tc.refuse && !bytes.Contains(got, rejectHead) {
					t.Fatalf("fed %d bytes at a time: not refused", step)
				}
			}
		})
	}
}

// runFramingConn is runFraming on a given tracker.
func runFramingConn(c *framingConn, in []byte, step int) []byte {
	for len(in) > 0 {
		n := min(step, len(in))
		c.feed(in[:n])
		in = in[n:]
	}
	return append(c.pending, c.line...)
}

// FuzzFramingAgainstNetHTTP is the differential test on arbitrary streams.
func FuzzFramingAgainstNetHTTP(f *testing.F) {
	for _, tc := range hostileFraming {
		if len(tc.stream) < 4096 {
			f.Add([]byte(tc.stream), 3)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		checkAgainstNetHTTP(t, in, runFramingConn(newFramingConn(nil, testMaxHeaderBytes), in, max(step, 1)))
	})
}

// scriptedConn is a net.Conn whose reads return scripted pieces, each followed or not by a
// timeout, and io.EOF at the end.
type scriptedConn struct {
	net.Conn
	pieces   [][]byte
	timeouts []bool // after pieces[i]: a timeout error (with no data), then the next piece
	timedOut bool
	written  bytes.Buffer
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (c *scriptedConn) Read(p []byte) (int, error) {
	if c.timedOut {
		c.timedOut = false
		return 0, timeoutError{}
	}
	if len(c.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pieces[0])
	c.pieces[0] = c.pieces[0][n:]
	if len(c.pieces[0]) == 0 {
		c.pieces = c.pieces[1:]
		c.timedOut = c.timeouts[0]
		c.timeouts = c.timeouts[1:]
	}
	return n, nil
}

func (c *scriptedConn) Write(p []byte) (int, error) { return c.written.Write(p) }

// readAllThroughTimeouts reads c to EOF the way net/http's server does after it expired a
// deadline on purpose: it reads again. It returns the bytes and how many timeouts it saw.
func readAllThroughTimeouts(t *testing.T, c net.Conn) ([]byte, int) {
	var out []byte
	timeouts := 0
	buf := make([]byte, 1000)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		var ne net.Error
		switch {
		case err == io.EOF:
			return out, timeouts
		case errors.As(err, &ne) && ne.Timeout():
			if n != 0 {
				t.Fatalf("a timeout came with %d bytes", n)
			}
			timeouts++
		case err != nil:
			t.Fatalf("read: %v", err)
		}
	}
}

// FuzzFramingRead drives framingConn.Read over a connection that delivers the input in
// fuzzed pieces with read timeouts between them, then EOF: the server must read exactly what
// the tracker makes of the input in one piece (timeouts change nothing), and every timeout
// must reach the server.
func FuzzFramingRead(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"+"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), []byte{45, 0x80 | 10, 3})
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), []byte{0x80 | 20, 0x80 | 30, 7})
	f.Fuzz(func(t *testing.T, in []byte, cuts []byte) {
		sc := &scriptedConn{}
		rest := in
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(n, int(cuts[i]&0x7f)+1)
			}
			sc.pieces = append(sc.pieces, rest[:n])
			sc.timeouts = append(sc.timeouts, i < len(cuts) && cuts[i]&0x80 != 0)
			rest = rest[n:]
		}
		wantTimeouts := 0
		for _, to := range sc.timeouts {
			if to {
				wantTimeouts++
			}
		}
		got, timeouts := readAllThroughTimeouts(t, newFramingConn(sc, 64<<10))
		want := runFraming(in, len(in)+1)
		if !bytes.Equal(got, want) {
			t.Fatalf("read through %d timeouts:\n got %q\nwant %q", timeouts, got, want)
		}
		if timeouts != wantTimeouts {
			t.Fatalf("timeouts seen by the server: got %d; want %d", timeouts, wantTimeouts)
		}
	})
}

// TestFramingHeadLimit checks that a head growing past net/http's own limit is held no
// longer than that limit (plus one read) before the tracker gives up on it.
func TestFramingHeadLimit(t *testing.T) {
	t.Parallel()
	c := newFramingConn(nil, testMaxHeaderBytes)
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 2<<20))
	most := 0
	for len(in) > 0 {
		n := min(4096, len(in))
		c.feed(in[:n])
		in = in[n:]
		most = max(most, len(c.line))
	}
	if limit := headLimit(testMaxHeaderBytes) + 4096; most > limit {
		t.Errorf("largest held head: got %d bytes; want at most %d", most, limit)
	}
}

// TestUpgradeThroughProxy checks the Upgrade rule on a real proxy: after a 101 the bytes are
// another protocol and pass untouched (even when they look like a smuggling probe); after an
// Upgrade the backend declines, the connection is still HTTP/1 and a smuggling probe on it is
// refused.
func TestUpgradeThroughProxy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var hits atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					hits.Add(1)
					io.Copy(io.Discard, req.Body)
					if req.URL.Path == "/accept" {
						io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
						io.Copy(c, br) // echo the upgraded stream
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ndeclined")
				}
			}()
		}
	}()
	b := ir.Backend{Name: "test/up", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
	port := freePort(t)
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b}}}}}}))
	probe := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	upgrade := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"
	}
	t.Run("101 then probe-like bytes pass", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, upgrade("/accept"))
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 101 {
			t.Fatalf("upgrade: got %v %v; want 101", res, err)
		}
		io.WriteString(c, probe)
		got := make([]byte, len(probe))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != probe {
			t.Fatalf("echo after 101: got %q (%v); want %q", got, err, probe)
		}
	})
	t.Run("declined upgrade then probe is refused", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, upgrade("/decline"))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("declined upgrade: got %d; want 200", res.StatusCode)
		}
		before := hits.Load()
		io.WriteString(c, probe)
		res, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 400 {
			t.Errorf("probe after a declined upgrade: got %d; want 400", res.StatusCode)
		}
		if got := hits.Load() - before; got != 0 {
			t.Errorf("backend hits: got %d; want 0", got)
		}
	})
}
