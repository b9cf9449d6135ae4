package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// The HTTP/1.1 server fast path of cleartext HTTP ports (hack/bench-proxy.sh measures it).
//
// net/http's server costs a proxy most of its CPU per request: a goroutine per request to
// watch the client, a context, deadlines, a Request with a parsed header map, a buffered
// ResponseWriter, and then ReverseProxy clones all of it for the upstream request. h1Server
// serves the plain requests itself on the connection's goroutine: a GET or HEAD without a
// body whose head is small and unremarkable is parsed from the read buffer, routed by the
// same serveHTTP as every other request, and forwarded over the h1 fast path's pooled
// upstream connections (h1fast.go) by writing the request head and relaying the response
// directly, without a ReverseProxy.
//
// Anything else is not parsed here: the connection, with every byte not yet consumed, is
// handed to the port's net/http server (through the framing tracker), which then serves it
// to the end. That covers requests with a body or a framing header (Content-Length,
// Transfer-Encoding: the smuggling surface stays with net/http and framing.go), Upgrade,
// Expect, TE, Trailer, HTTP/1.0, HTTP/2 prior knowledge, other methods, obs-fold, bare LF,
// a missing, repeated or invalid Host, a request-target not in origin form, a head larger
// than the read buffer or than MaxHeaderBytes, and any byte net/http might treat
// differently. So what h1Server accepts is a strict subset of what net/http accepts, parsed
// to the same Request, and net/http answers every error.
//
// What it keeps from net/http's server: the read-header and idle timeouts, Date on every
// answer, Connection: close handling, graceful shutdown, and noticing a client that goes
// away while its request waits for a slow backend (as net/http's background read does, but
// only once a request has waited h1WatchDelay, so a fast request pays nothing for it).
// The upstream side keeps every limit of the h1 fast path (response head size, 1xx cap,
// response head timeout, route timeouts, no pooled connection with unread bytes).
//
// Where the answer differs from net/http's server with ReverseProxy: no Content-Type is
// sniffed for a backend answer without one (the backend's fields go through unchanged, as in
// nginx and Envoy), and interim 1xx answers are not forwarded (as on the h1 fast path
// before). Requests routed to h2c backends are forwarded by the ReverseProxy through
// h1Writer. TestH1ServerMatchesNetHTTP and TestH1ServerRelaysLikeReverseProxy compare the
// two paths byte stream by byte stream; FuzzH1ServerParse checks that every head h1Server
// parses is parsed the same by net/http.

const (
	// h1ReadBufferSize bounds the request heads the fast path parses; longer heads are
	// handed to net/http.
	h1ReadBufferSize = 4096
	// h1ReadHeaderTimeout and h1IdleTimeout are the port's http.Server's (proxy.go).
	h1ReadHeaderTimeout = 30 * time.Second
	h1IdleTimeout       = 120 * time.Second
	// h1WatchDelay is how long a request waits for its upstream answer before its client
	// connection is watched for the client going away.
	h1WatchDelay = 5 * time.Millisecond
)

// h1Server serves one cleartext HTTP port.
type h1Server struct {
	p              *Proxy
	port           int32
	ln             net.Listener
	maxHeaderBytes int
	handoff        *handoffListener // what the port's net/http server accepts

	mu      sync.Mutex
	conns   map[*h1Conn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

func newH1Server(p *Proxy, port int32, ln net.Listener, maxHeaderBytes int) *h1Server {
	return &h1Server{p: p, port: port, ln: ln, maxHeaderBytes: maxHeaderBytes, conns: map[*h1Conn]struct{}{},
		handoff: &handoffListener{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}}
}

// handoffListener is the net.Listener of a cleartext port's http.Server: it yields the
// connections h1Server hands over.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// serve accepts connections until the socket is closed.
func (s *h1Server) serve() error {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait and retry, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.p.log.Warn("accept failed; retrying", "port", s.port, "error", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &h1Conn{s: s, nc: nc}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// shutdown closes the socket and the idle connections, lets requests in progress finish
// until ctx ends, then closes what is left.
func (s *h1Server) shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.wakeIdle()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
			c.closeWatchConn()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// h1Conn is one client connection served by h1Server.
type h1Conn struct {
	s      *h1Server
	nc     net.Conn
	br     *bufio.Reader // reads from the h1Conn (Read), which returns the watcher's byte first
	bw     *bufio.Writer
	remote string // RemoteAddr
	ip     string // the client's IP, for X-Forwarded-For
	idle   atomic.Bool
	// idleDeadline is the read deadline readHead set last; zero once anything else set one.
	idleDeadline time.Time
	inHead       bool // readHead has read a head's first byte
	headDeadline bool // and set the read header deadline
	rio          io.ReadWriter
	out          countingWriter // under bw
	w            h1Writer
	resp         respHead // the upstream response head being relayed, reused

	// The request being served and its parts, reused per request (parse).
	req  http.Request
	url  url.URL
	hdr  http.Header
	vals []string
	fwd  forward // serveHTTP's routing decision

	// The watcher: while a request waits for its upstream answer for longer than
	// h1WatchDelay, a read on the client connection tells whether the client went away.
	watchTimer *time.Timer
	wmu        sync.Mutex
	wcond      *sync.Cond
	waiting    bool      // a request waits for its upstream answer
	watching   bool      // the watcher is in its Read
	aborting   bool      // the watcher's Read is being interrupted on purpose
	gone       bool      // the client closed or reset the connection
	up         *fastConn // the upstream connection the waiting request uses
	// Within a read session the watcher reads wconn, a second descriptor of the socket,
	// made for that watch and closed after it; else nc. closed: the connection ended, no
	// wconn is made.
	session readSessioner
	wconn   net.Conn
	closed  bool
	// The waiting request's response head timer, when the watcher arms it (waitUpstream):
	// to arm for headDue, armed.
	headTimer  *time.Timer
	headDue    time.Duration
	headArmed  bool
	pending    [1]byte // a byte the watcher read (the start of a pipelined request)
	hasPending bool
}

func (c *h1Conn) Read(p []byte) (int, error) {
	c.wmu.Lock()
	if c.hasPending && len(p) > 0 {
		p[0], c.hasPending = c.pending[0], false
		c.wmu.Unlock()
		return 1, nil
	}
	c.wmu.Unlock()
	return c.rio.Read(p)
}

var (
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1ReadBufferSize) }}
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

func (c *h1Conn) serve() {
	s := c.s
	handedOff := false
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			s.p.log.Error("panic serving HTTP/1.1 connection", "port", s.port, "remote", c.remote, "panic", fmt.Sprint(v))
		}
		if c.watchTimer != nil {
			c.watchTimer.Stop()
		}
		if !handedOff {
			c.bw.Flush() // answers held back for pipelined requests
			c.nc.Close()
		}
		c.closeWatchConn()
		if c.br != nil {
			c.br.Reset(nil)
			h1Readers.Put(c.br)
			c.bw.Reset(nil)
			h1Writers.Put(c.bw)
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.remote = c.nc.RemoteAddr().String()
	c.ip, _, _ = net.SplitHostPort(c.remote)
	c.wcond = sync.NewCond(&c.wmu)
	c.br = h1Readers.Get().(*bufio.Reader)
	c.br.Reset(c)
	c.bw = h1Writers.Get().(*bufio.Writer)
	c.bw.Reset(&c.out)
	c.rio = c.nc
	if r := newRawIO(c.nc); r != nil {
		c.rio = r
	}
	c.out.w = c.rio
	maxHead := min(h1ReadBufferSize, orDefault(s.maxHeaderBytes, http.DefaultMaxHeaderBytes))
	// serveSome serves requests until the connection ends (true) or, within a read session,
	// must wait for the client's next bytes (false).
	serveSome := func() bool {
		for {
			if s.closing.Load() {
				return true
			}
			head, res := c.readHead(maxHead)
			switch res {
			case headWait:
				return false
			case headClose:
				return true
			}
			var r *http.Request
			if head != nil {
				r = c.parse(head)
			}
			if r == nil {
				// Answers held back for pipelined requests go first.
				if c.bw.Flush() != nil {
					return true
				}
				handedOff = c.handOff()
				return true
			}
			c.br.Discard(len(head))
			if !c.serveRequest(r) {
				return true
			}
		}
	}
	rs, ok := c.rio.(readSessioner)
	if !ok {
		serveSome() // reads wait: it returns when the connection ends
		return
	}
	c.wmu.Lock()
	c.session = rs
	c.wmu.Unlock()
	if err := rs.readSession(serveSome); err != nil && c.inHead && !s.closing.Load() {
		// A partial head and then an error (the header timeout): net/http answers it as it
		// would, as when a read in readHead fails.
		if c.bw.Flush() == nil {
			handedOff = c.handOff()
		}
	}
}

// readSessioner is rawIO's (rawio_linux.go) way of serving a client connection without a
// read that finds the socket empty before each wait for the next request: serve runs
// within one wait of the poller, its reads fail with errWouldBlock instead of waiting, and
// it returns false to wait. While it runs, another goroutine reads the socket only through
// dup's connection.
type readSessioner interface {
	readSession(serve func() bool) error
	dup() (net.Conn, error)
}

// errWouldBlock: within a read session, the socket has nothing to read yet.
var errWouldBlock = errors.New("read would block")

// headResult is what readHead found.
type headResult int

const (
	headOK    headResult = iota // a head, or nil: hand the connection to net/http
	headWait                    // within a read session: wait for the client's bytes
	headClose                   // close the connection
)

// readHead waits for the next request and returns its head, still in the read buffer, or
// nil when the connection must go to net/http. Within a read session it returns headWait
// when the client's bytes are not there yet, and carries on from where it was when called
// again (inHead: the head's first byte was read, its deadline set).
func (c *h1Conn) readHead(maxHead int) ([]byte, headResult) {
	if !c.inHead {
		c.idle.Store(true)
		// Re-arming the deadline is a timer update per request; on a busy connection it is
		// moved only every h1IdleTimeout/12 (the idle timeout is then 110-120 s).
		if now := time.Now(); c.idleDeadline.Sub(now) < h1IdleTimeout-h1IdleTimeout/12 {
			c.idleDeadline = now.Add(h1IdleTimeout)
			c.nc.SetReadDeadline(c.idleDeadline)
		}
		_, err := c.br.Peek(1)
		if err == errWouldBlock {
			return nil, headWait // still idle
		}
		c.idle.Store(false)
		if err != nil || c.s.closing.Load() {
			return nil, headClose
		}
		c.inHead, c.headDeadline = true, false
	}
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			c.inHead = false
			if i+4 > maxHead {
				return nil, headOK
			}
			return buf[:i+4], headOK
		}
		if len(buf) >= maxHead || bytes.Contains(buf, []byte("\n\n")) || bytes.Contains(buf, []byte("\n\r\n")) {
			c.inHead = false
			return nil, headOK
		}
		if !c.headDeadline {
			c.idleDeadline = time.Time{}
			c.nc.SetReadDeadline(time.Now().Add(h1ReadHeaderTimeout))
			c.headDeadline = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if err == errWouldBlock {
				return nil, headWait
			}
			// A partial head and then an error: net/http answers it as it would.
			c.inHead = false
			return nil, headOK
		}
	}
}

// wakeIdle makes a connection waiting for its next request give up (shutdown).
func (c *h1Conn) wakeIdle() {
	if c.idle.Load() {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// handOff gives the connection, from the first unconsumed byte, to the port's net/http
// server. It reports whether that server took it.
func (c *h1Conn) handOff() bool {
	buffered, _ := c.br.Peek(c.br.Buffered())
	prefix := append([]byte(nil), buffered...)
	c.nc.SetDeadline(time.Time{})
	conn := newFramingConn(&prefixConn{Conn: c.nc, prefix: prefix}, c.s.maxHeaderBytes)
	if !c.s.handoff.give(conn) {
		return false
	}
	return true
}

// countingWriter counts the bytes written to the client connection.
type countingWriter struct {
	w io.Writer
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// prefixConn reads prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// parse turns a request head into the Request net/http would make of it, or returns nil when
// the request is not one the fast path serves (see the comment at the top).
func (c *h1Conn) parse(head []byte) *http.Request {
	var method string
	switch {
	case bytes.HasPrefix(head, []byte("GET /")):
		method = http.MethodGet
	case bytes.HasPrefix(head, []byte("HEAD /")):
		method = http.MethodHead
	default:
		return nil
	}
	// One string for the whole head: the Request's strings are parts of it.
	s := string(head[:len(head)-2])
	line, rest, ok := cutCRLF(s)
	if !ok {
		return nil
	}
	target, version, ok := cutByte(line[len(method)+1:], ' ')
	if !ok || version != "HTTP/1.1" || target == "" {
		return nil
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b >= 0x7f {
			return nil
		}
	}
	fields := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			fields++
		}
	}
	// The Request, its URL, header map and values are the connection's, reused by each
	// request: nothing keeps a request once serveRequest returns (mirror copies take what
	// they send, the ReverseProxy clones). Its strings are parts of s, made per request.
	if c.hdr == nil || len(c.hdr) > 32 {
		c.hdr = make(http.Header, max(fields, 8))
	} else {
		clear(c.hdr)
	}
	h := c.hdr
	if cap(c.vals) < fields || cap(c.vals) > 128 {
		c.vals = make([]string, 0, max(fields, 8))
	}
	vals := c.vals[:0]
	var host string
	hosts := 0
	closeReq := false
	for rest != "" {
		var l string
		l, rest, ok = cutCRLF(rest)
		if !ok {
			return nil
		}
		name, value, ok := cutByte(l, ':')
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return nil // includes obs-fold and space before the colon
		}
		value = textproto.TrimString(value)
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue
		case "Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Te", "Trailer", "Http2-Settings", "Proxy-Connection":
			return nil
		case "Connection":
			if h[key] != nil {
				return nil // net/http reads only the first
			}
			for _, tok := range bytes.Split([]byte(value), []byte(",")) {
				switch t := textproto.TrimBytes(tok); {
				case len(t) == 0, asciiEqualFold(t, "keep-alive"):
				case asciiEqualFold(t, "close"):
					closeReq = true
				default:
					return nil // a token naming other hop-by-hop headers
				}
			}
		}
		vals = append(vals, value)
		if old := h[key]; old != nil {
			h[key] = append(old, value)
		} else {
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return nil
	}
	// As net/http's readRequest (fixPragmaCacheControl, RFC 7234 5.4).
	if hp := h["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	u := &c.url
	if !parsePlainTarget(target, u) {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil
		}
	}
	c.req = http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: http.NoBody, Host: host, RemoteAddr: c.remote, RequestURI: target, Close: closeReq}
	return &c.req
}

// parsePlainTarget sets *u to what url.ParseRequestURI makes of an origin-form target whose
// path has only characters that URL.EscapedPath leaves as they are (no escapes), and reports
// whether it did; other targets are for url.ParseRequestURI. FuzzH1ServerParse compares.
func parsePlainTarget(target string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 0; i < len(path); i++ {
		if !plainPathByte(path[i]) {
			return false
		}
	}
	*u = url.URL{Path: path}
	if hasQuery {
		// ParseRequestURI: a lone trailing "?" is ForceQuery; otherwise the query is
		// everything after the first "?".
		if query == "" {
			u.ForceQuery = true
		} else {
			u.RawQuery = query
		}
	}
	return true
}

// plainPathByte reports whether c stands for itself in a path, unescaped by
// URL.EscapedPath (net/url's shouldEscape with encodePath is false for it).
func plainPathByte(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != s[i] {
			return false
		}
	}
	return true
}

func cutCRLF(s string) (line, rest string, ok bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\r' {
			if s[i+1] != '\n' {
				return "", "", false
			}
			return s[:i], s[i+2:], true
		}
		if s[i] == '\n' {
			return "", "", false
		}
	}
	return "", "", false
}

func cutByte(s string, b byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// serveRequest serves one request; false: close the connection.
func (c *h1Conn) serveRequest(r *http.Request) bool {
	w := &c.w
	*w = h1Writer{c: c, req: r, contentLength: -1, buf: w.buf[:0]}
	c.s.p.serveHTTP(c.s.port, w, r)
	w.finish()
	if cap(c.resp.raw) > 64<<10 {
		c.resp.raw = nil // a backend's huge head is not kept for the connection's life
	}
	keep := !w.closeAfter && !r.Close && !c.gone && !c.s.closing.Load()
	// Answers to pipelined requests go out together.
	if !keep || c.br.Buffered() == 0 {
		if err := c.bw.Flush(); err != nil {
			return false
		}
	}
	return keep
}

// waitUpstream marks the request as waiting for up's answer and arms the watcher. head, when
// not nil, is the response head timer, to expire after d: most answers come before the
// watcher's h1WatchDelay, so when the watcher is armed and d is long enough it is the
// watcher that arms head, for d less the delay (at most h1WatchDelay early, should an
// earlier request's watcher timer fire late); otherwise it is armed here. stopHead stops it.
func (c *h1Conn) waitUpstream(up *fastConn, head *time.Timer, d time.Duration) {
	watch := c.br.Buffered() == 0 // a pipelined request is already read: a read cannot tell a close apart
	c.wmu.Lock()
	c.waiting, c.up = true, up
	if head != nil && watch && d >= 20*h1WatchDelay {
		c.headTimer, c.headDue, c.headArmed = head, d-h1WatchDelay, false
		head = nil
	}
	c.wmu.Unlock()
	if head != nil {
		head.Reset(d)
	}
	if !watch {
		return
	}
	if c.watchTimer == nil {
		c.watchTimer = time.AfterFunc(h1WatchDelay, c.watch)
	} else {
		c.watchTimer.Reset(h1WatchDelay)
	}
}

// stopHead stops the response head timer waitUpstream was given and reports whether it had
// expired (then the connection's deadline is spoiled).
func (c *h1Conn) stopHead(head *time.Timer) bool {
	c.wmu.Lock()
	lazy, armed := c.headTimer == head, c.headArmed
	if lazy {
		c.headTimer, c.headDue, c.headArmed = nil, 0, false
	}
	c.wmu.Unlock()
	if lazy && !armed {
		return false // the watcher never armed it
	}
	return !head.Stop()
}

// doneWaiting ends the wait: it stops the watcher, waiting for its Read to return. It
// reports whether the client went away.
func (c *h1Conn) doneWaiting() bool {
	if c.watchTimer != nil {
		c.watchTimer.Stop()
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.waiting, c.up = false, nil
	if c.watching {
		c.aborting = true
		if c.wconn != nil {
			c.wconn.SetReadDeadline(time.Unix(1, 0))
		} else {
			c.idleDeadline = time.Time{}
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
		for c.watching {
			c.wcond.Wait()
		}
		c.aborting = false
	}
	return c.gone
}

// watch runs on the watcher timer's goroutine: it reads the client connection until the
// client sends something (kept for the next request), closes it, or the wait ends.
func (c *h1Conn) watch() {
	c.wmu.Lock()
	if c.waiting && c.headTimer != nil && !c.headArmed {
		c.headTimer.Reset(c.headDue) // the response head timeout, for the rest of its time
		c.headArmed = true
	}
	// A late call of an earlier request's timer may meet a watcher already running.
	if !c.waiting || c.watching || c.hasPending || c.gone || c.closed {
		c.wmu.Unlock()
		return
	}
	rd := c.nc
	if c.session != nil {
		// The serve loop holds the connection's read side (readSession): read a second
		// descriptor of the socket, made for this watch. It is not kept for the next: while
		// registered with the poller, every request the client sends would make the poller
		// report it too, for nobody (5% more CPU per request, hack/bench-proxy.sh), while
		// a watch is for a request that already waited h1WatchDelay.
		wc, err := c.session.dup()
		if err != nil {
			c.wmu.Unlock()
			c.s.p.log.Warn("cannot watch a waiting client connection", "port", c.s.port, "remote", c.remote, "error", err)
			return
		}
		c.wconn = wc
		rd = c.wconn
	} else {
		c.idleDeadline = time.Time{}
	}
	c.watching = true
	// Under the lock, so that doneWaiting's expired deadline always comes after this one.
	rd.SetReadDeadline(time.Time{})
	c.wmu.Unlock()
	n, err := rd.Read(c.pending[:])
	c.wmu.Lock()
	if n == 1 {
		c.hasPending = true
	}
	if err != nil && !c.aborting {
		// The client closed or reset the connection: nobody waits for the answer.
		c.gone = true
		if c.up != nil {
			c.up.nc.SetDeadline(time.Unix(1, 0))
		}
	}
	if c.wconn != nil {
		c.wconn.Close()
		c.wconn = nil
	}
	c.watching = false
	c.wmu.Unlock()
	c.wcond.Broadcast()
}

// closeWatchConn closes the watcher's descriptor of the socket, if a watch is reading it,
// and keeps it from making one: the connection ended.
func (c *h1Conn) closeWatchConn() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.closed = true
	if c.wconn != nil {
		c.wconn.Close()
		c.wconn = nil
	}
}

// h1Writer is the http.ResponseWriter of requests served by h1Server, for answers the proxy
// makes itself (errors, redirects) and for requests forwarded through the ReverseProxy (h2c
// backends). It holds a small body back so that it can send a Content-Length, and streams
// larger or flushed bodies chunked, as net/http's server does. Interim (1xx) answers are
// not sent, as on the h1 fast path's upstream side; trailers are not sent.
type h1Writer struct {
	c             *h1Conn
	req           *http.Request
	header        http.Header
	code          int
	wroteHeader   bool
	committed     bool // the head is written
	chunked       bool
	contentLength int64 // declared by the handler, or -1
	written       int64
	buf           []byte
	closeAfter    bool
	relayed       bool // forwardH1 wrote the whole answer itself
}

func (w *h1Writer) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader || w.relayed {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return
	}
	w.code, w.wroteHeader = code, true
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

func (w *h1Writer) bodyAllowed() bool {
	return w.req.Method != http.MethodHead && w.code != http.StatusNoContent && w.code != http.StatusNotModified
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.code == http.StatusNoContent || w.code == http.StatusNotModified {
		return 0, http.ErrBodyNotAllowed
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if w.contentLength < 0 && len(w.buf)+len(p) <= 4096 {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commit(w.contentLength < 0)
	}
	return w.writeBody(p)
}

func (w *h1Writer) writeBody(p []byte) (int, error) {
	bw := w.c.bw
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(p)
		bw.WriteString("\r\n")
		return n, err
	}
	return bw.Write(p)
}

// Flush sends what was written so far (the ReverseProxy flushes streamed answers).
func (w *h1Writer) Flush() { w.FlushError() }

func (w *h1Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.contentLength < 0 && w.bodyAllowed())
	}
	return w.c.bw.Flush()
}

// commit writes the head, then the held body.
func (w *h1Writer) commit(chunked bool) {
	w.committed, w.chunked = true, chunked
	bw := w.c.bw
	writeStatusLine(bw, w.code)
	for k, vv := range w.header {
		if !httpguts.ValidHeaderFieldName(k) {
			continue // as net/http's server: dropped
		}
		switch k {
		case "Transfer-Encoding", "Connection":
			continue
		case "Content-Length":
			if chunked {
				continue
			}
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if _, ok := w.header["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	} else if w.contentLength < 0 && w.bodyAllowed() {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(w.buf)))
		bw.WriteString("\r\n")
	}
	if w.closeAfter || w.req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.buf) > 0 {
		w.writeBody(w.buf)
		w.buf = w.buf[:0]
	}
}

// finish completes the answer once the handler returned.
func (w *h1Writer) finish() {
	if w.relayed {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if w.chunked {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.contentLength >= 0 && w.written != w.contentLength && w.bodyAllowed() {
		w.closeAfter = true // the declared length was not sent: the connection is spoiled
	}
	if cap(w.buf) > 4096 {
		w.buf = nil
	}
}

// statusLines holds the status line of every code with a reason phrase, so that writing
// one is a copy.
var statusLines = func() (l [600]string) {
	for code := range l {
		if t := http.StatusText(code); t != "" && code >= 100 {
			l[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n"
		}
	}
	return l
}()

func writeStatusLine(bw *bufio.Writer, code int) {
	if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
		bw.WriteString(statusLines[code])
		return
	}
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	bw.WriteByte(' ')
	if t := http.StatusText(code); t != "" {
		bw.WriteString(t)
	} else {
		bw.WriteString("status code ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	}
	bw.WriteString("\r\n")
}

// writeField writes a field line as net/http does: CR and LF in the value become spaces,
// the value is trimmed.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	v = textproto.TrimString(v)
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		bw.WriteString(v)
		bw.WriteString("\r\n")
		return
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == '\r' || b == '\n' {
			bw.WriteByte(' ')
		} else {
			bw.WriteByte(b)
		}
	}
	bw.WriteString("\r\n")
}

// httpDate is the current time as an HTTP date, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateText{sec: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	sec  int64
	text []byte
}

var cachedDate atomic.Pointer[dateText]

// forwardH1 forwards a request served by h1Server over the fast path's pooled upstream
// connections, writing the request head from st and relaying the answer to the client.
func (p *Proxy) forwardH1(ctx context.Context, w *h1Writer, st *reqState, f *forward) {
	t, c := p.up.fast, w.c
	for attempt := 0; ; attempt++ {
		var uc *fastConn
		if attempt == 0 {
			uc = t.get(f.addr, true) // a retry dials afresh: the next pooled one may be stale too
		}
		reused := uc != nil
		if uc == nil {
			nc, err := t.dial(ctx, "tcp", f.addr)
			if err != nil {
				p.h1Error(ctx, w, f, err)
				return
			}
			uc = t.newConn(nc)
		}
		if c.bw.Buffered() > 0 {
			// Answers to earlier pipelined requests go out first, so that a broken relay
			// below can drop its own partial answer without them.
			if err := c.bw.Flush(); err != nil {
				w.closeAfter, w.relayed = true, true
				return
			}
		}
		sent := c.out.n
		answered, err := p.exchange(ctx, c, uc, reused, st, f, w)
		if err == nil {
			return
		}
		uc.nc.Close()
		if answered {
			// The answer broke off: the client connection cannot carry on. When none of
			// it left yet, none is sent, as net/http's server does when a ReverseProxy
			// aborts.
			if c.out.n == sent {
				c.bw.Reset(&c.out)
			}
			w.closeAfter = true
			p.log.Debug("upstream answer broke off", "route", f.route, "backend", f.backend, "endpoint", f.addr, "error", err)
			return
		}
		// Like RoundTrip: a pooled connection the backend closed while idle fails before
		// any answer; the request has no body and is a GET or HEAD, so it is sent again.
		if reused && attempt == 0 && staleConnError(err) && ctx.Err() == nil && !c.gone {
			continue
		}
		p.h1Error(ctx, w, f, err)
		return
	}
}

// h1Error answers a request that got no answer from its backend, as proxyError does.
func (p *Proxy) h1Error(ctx context.Context, w *h1Writer, f *forward, err error) {
	if w.c.gone {
		f.code = 499 // the client went away; nobody reads an answer
		w.closeAfter, w.relayed = true, true
		return
	}
	code := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	f.code = code
	p.log.Debug("upstream request failed", "route", f.route, "backend", f.backend, "endpoint", f.addr, "error", err)
	w.WriteHeader(code)
}

// errBadUpstream is a response the fast path will not relay.
type errBadUpstream string

func (e errBadUpstream) Error() string { return "malformed upstream response: " + string(e) }

// exchange sends the request on uc and relays the answer to the client. answered reports
// whether any of the answer reached the client's buffer (then an error spoils the client
// connection).
func (p *Proxy) exchange(ctx context.Context, c *h1Conn, uc *fastConn, reused bool, st *reqState, f *forward, w *h1Writer) (answered bool, err error) {
	t := p.up.fast
	r := st.r
	// A route timeout (the context's deadline) and the response head timeout expire the
	// connection's deadline; so does the client going away (the watcher).
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { uc.nc.SetDeadline(time.Unix(1, 0)) })
	}
	var headTimer *time.Timer
	if _, routeBound := ctx.Deadline(); t.headerTimeout > 0 && !routeBound {
		if uc.headTimer == nil {
			uc.headTimer = time.AfterFunc(time.Hour, func() {
				uc.timedOut.Store(true)
				uc.nc.SetDeadline(time.Unix(1, 0))
			})
			uc.headTimer.Stop() // armed by waitUpstream or the watcher
		}
		headTimer = uc.headTimer
	}
	waiting := true
	c.waitUpstream(uc, headTimer, t.headerTimeout)
	defer func() {
		if waiting {
			c.doneWaiting()
		}
		if headTimer != nil {
			c.stopHead(headTimer)
		}
		stop()
		if err != nil && uc.timedOut.Load() && ctx.Err() == nil {
			err = errResponseHeaderTimeout
		}
	}()
	if uc.sender != nil {
		// The head is sent by the first read of the answer (requestSender), after the
		// quiet check get left to it for a pooled connection.
		uc.out.capture, uc.out.buf = true, uc.out.buf[:0]
	}
	err = writeUpstreamHead(uc.bw, st, c.ip)
	if err == nil {
		err = uc.bw.Flush()
	}
	if uc.sender != nil {
		uc.out.capture = false
		if err == nil {
			uc.sender.sendWithRead(uc.out.buf, reused)
		}
		if cap(uc.out.buf) > 64<<10 {
			uc.out.buf = nil // a huge head is not kept for the connection's life
		}
	}
	if err != nil {
		return false, err
	}
	maxHeader := orDefault(t.maxHeaderBytes, defaultMaxResponseHeaderBytes)
	uc.lr.set(maxHeader)
	// Peek first: its raw io.EOF means the backend had closed the connection before
	// answering anything (a stale pooled connection).
	if _, err := uc.br.Peek(1); err != nil {
		return false, err
	}
	rh := &c.resp
	for interim := 0; ; interim++ {
		if err := rh.read(uc.br, r.Method == http.MethodHead); err != nil {
			if uc.lr.remain <= 0 {
				err = fmt.Errorf("upstream response headers exceed %d bytes", maxHeader)
			}
			return false, err
		}
		if rh.code >= 100 && rh.code < 200 {
			if rh.code == http.StatusSwitchingProtocols {
				return false, errBadUpstream("101 Switching Protocols to a request without Upgrade")
			}
			if interim >= max1xxResponses {
				return false, fmt.Errorf("upstream sent more than %d interim (1xx) responses", max1xxResponses)
			}
			uc.lr.set(maxHeader) // each head gets the limit, as in the Transport
			continue
		}
		break
	}
	if headTimer != nil {
		if c.stopHead(headTimer) {
			return false, errResponseHeaderTimeout // fired as the head arrived: the deadline is spoiled
		}
		// Stopped: uc may go back to the pool, and its timer with it.
		headTimer = nil
	}
	waiting = false
	if c.doneWaiting() {
		return false, errors.New("client went away")
	}
	uc.lr.set(1<<63 - 1)
	f.code = rh.code
	w.relayed = true
	closeClient := r.Close
	if err := rh.writeHead(c.bw, f.respMods, closeClient); err != nil {
		return false, err
	}
	if closeClient {
		w.closeAfter = true
	}
	if err := rh.copyBody(c.bw, uc.br); err != nil {
		return true, err
	}
	if !stop() {
		return true, ctx.Err() // the route timeout expired the connection during the body
	}
	if rh.reusable && uc.br.Buffered() == 0 {
		t.put(f.addr, uc)
	} else {
		uc.nc.Close()
	}
	return true, nil
}

// writeUpstreamHead writes the request as ReverseProxy with rewriteUpstream would: hop-by-hop
// fields and incoming X-Forwarded-*/Forwarded removed, X-Forwarded-For, -Host and -Proto set,
// no User-Agent added.
func writeUpstreamHead(bw *bufio.Writer, st *reqState, clientIP string) error {
	r := st.r
	host := st.host
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("invalid Host header %q", host)
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if st.pathChanged {
		u := url.URL{Path: st.path}
		bw.WriteString(u.EscapedPath())
	} else if ep := r.URL.EscapedPath(); ep != "" {
		bw.WriteString(ep)
	} else {
		bw.WriteByte('/')
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range st.header {
		switch k {
		case "Host", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
			"Transfer-Encoding", "Upgrade", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Content-Length":
			continue
		case "Close":
			if r.Close {
				continue // named by Connection: close
			}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if clientIP != "" {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(clientIP)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(host)
	bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
	return nil
}

type bodyFraming int

const (
	framingNone bodyFraming = iota // HEAD, 204, 304
	framingLength
	framingChunked
	framingUntilClose
)

// respHead is an upstream response head: its bytes and field positions, reused per client
// connection.
type respHead struct {
	raw       []byte
	fields    [][4]int // name and value bounds in raw
	code      int
	framing   bodyFraming
	length    int64
	reusable  bool
	hasDate   bool
	connNames [][2]int // header names listed in Connection
	inBody    bool     // reading a chunked body's lines
}

// maxBodyLine bounds a chunk-size line or trailer field line (net/http's maxLineLength for
// chunk lines).
const maxBodyLine = 4096

// read reads one response head with net/http's rules for framing (RFC 9112 6.3): it refuses
// what net/http's Transport refuses (a malformed status line or field, conflicting
// Content-Lengths, a transfer coding other than chunked last) and obs-fold.
func (h *respHead) read(br *bufio.Reader, head bool) error {
	h.raw, h.fields, h.connNames, h.inBody = h.raw[:0], h.fields[:0], h.connNames[:0], false
	h.length, h.reusable, h.hasDate = -1, true, false
	line, err := h.readLine(br)
	if err != nil {
		return err
	}
	sl := h.raw[line[0]:line[1]]
	switch {
	case bytes.HasPrefix(sl, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(sl, []byte("HTTP/1.0 ")):
		h.reusable = false
	default:
		return errBadUpstream("status line")
	}
	if len(sl) < 12 || (len(sl) > 12 && sl[12] != ' ') {
		return errBadUpstream("status line")
	}
	code := 0
	for _, b := range sl[9:12] {
		if b < '0' || b > '9' {
			return errBadUpstream("status code")
		}
		code = code*10 + int(b-'0')
	}
	if code < 100 {
		return errBadUpstream("status code")
	}
	h.code = code
	chunked, haveTE := false, false
	for {
		line, err := h.readLine(br)
		if err != nil {
			return err
		}
		l := h.raw[line[0]:line[1]]
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return errBadUpstream("field line")
		}
		if !validFieldName(l[:colon]) {
			if n := bytes.TrimRight(l[:colon], " \t"); len(n) < colon && validFieldName(n) {
				// Whitespace before the colon: net/http's client takes the field and its
				// server then drops it (its name is not a token); so does this relay.
				continue
			}
			return errBadUpstream("field line")
		}
		vs, ve := line[0]+colon+1, line[1]
		for vs < ve && (h.raw[vs] == ' ' || h.raw[vs] == '\t') {
			vs++
		}
		for ve > vs && (h.raw[ve-1] == ' ' || h.raw[ve-1] == '\t') {
			ve--
		}
		value := h.raw[vs:ve]
		if !validFieldValue(value) {
			return errBadUpstream("field value")
		}
		name := l[:colon]
		f := [4]int{line[0], line[0] + colon, vs, ve}
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || (h.length >= 0 && n != h.length) {
				return errBadUpstream("Content-Length")
			}
			h.length = n
			continue // written by writeHead
		case asciiEqualFold(name, "transfer-encoding"):
			haveTE = true
			last := value
			if i := bytes.LastIndexByte(value, ','); i >= 0 {
				last = bytes.TrimSpace(value[i+1:])
			}
			chunked = asciiEqualFold(last, "chunked")
			continue
		case asciiEqualFold(name, "connection"):
			for i := vs; i < ve; {
				j := i
				for j < ve && h.raw[j] != ',' {
					j++
				}
				ts, te := i, j
				for ts < te && (h.raw[ts] == ' ' || h.raw[ts] == '\t') {
					ts++
				}
				for te > ts && (h.raw[te-1] == ' ' || h.raw[te-1] == '\t') {
					te--
				}
				if asciiEqualFold(h.raw[ts:te], "close") {
					h.reusable = false
				}
				if te > ts {
					h.connNames = append(h.connNames, [2]int{ts, te})
				}
				i = j + 1
			}
			continue
		case asciiEqualFold(name, "date"):
			h.hasDate = true
		}
		h.fields = append(h.fields, f)
	}
	switch {
	case code < 200 || head || code == http.StatusNoContent || code == http.StatusNotModified:
		h.framing = framingNone
	case haveTE:
		if !chunked {
			return errBadUpstream("unsupported transfer coding")
		}
		h.framing = framingChunked
		if h.length >= 0 {
			h.reusable = false // both: Transfer-Encoding wins, and the connection is closed
			h.length = -1
		}
	case h.length >= 0:
		h.framing = framingLength
	default:
		h.framing, h.reusable = framingUntilClose, false
	}
	return nil
}

// readLine appends a line (without its CRLF or LF) to raw and returns its bounds. Lines of
// the head are bounded by the limitReader under br; body lines (chunk sizes, trailer fields)
// by maxBodyLine.
func (h *respHead) readLine(br *bufio.Reader) ([2]int, error) {
	start := len(h.raw)
	for {
		b, err := br.ReadSlice('\n')
		h.raw = append(h.raw, b...)
		if err == nil {
			break
		}
		if h.inBody && len(h.raw)-start > maxBodyLine {
			return [2]int{}, errBadUpstream("chunk line or trailer field longer than 4096 bytes")
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return [2]int{}, err
		}
	}
	end := len(h.raw) - 1
	if end > start && h.raw[end-1] == '\r' {
		end--
	}
	return [2]int{start, end}, nil
}

func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func validFieldName(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return len(b) > 0
}

func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hopByHop reports whether a response field is not forwarded.
func (h *respHead) hopByHop(name []byte) bool {
	for _, s := range [...]string{"keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade"} {
		if asciiEqualFold(name, s) {
			return true
		}
	}
	for _, cn := range h.connNames {
		if bytes.EqualFold(name, h.raw[cn[0]:cn[1]]) {
			return true
		}
	}
	return false
}

// writeHead writes the head to the client: the end-to-end fields (through the route's
// response header modifiers when there are any), Date when the backend sent none, and the
// framing fields.
func (h *respHead) writeHead(bw *bufio.Writer, mods []*ir.HeaderModifier, closeClient bool) error {
	writeStatusLine(bw, h.code)
	if len(mods) > 0 {
		hdr := make(http.Header, len(h.fields))
		for _, f := range h.fields {
			name := h.raw[f[0]:f[1]]
			if h.hopByHop(name) {
				continue
			}
			k := textproto.CanonicalMIMEHeaderKey(string(name))
			hdr[k] = append(hdr[k], string(h.raw[f[2]:f[3]]))
		}
		for _, m := range mods {
			applyHeaderModifier(hdr, m)
		}
		for k, vv := range hdr {
			if !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			switch k {
			case "Content-Length", "Transfer-Encoding", "Connection":
				continue
			}
			for _, v := range vv {
				writeField(bw, k, v)
			}
		}
	} else {
		for _, f := range h.fields {
			name := h.raw[f[0]:f[1]]
			if h.hopByHop(name) {
				continue
			}
			bw.Write(name)
			bw.WriteString(": ")
			bw.Write(h.raw[f[2]:f[3]])
			bw.WriteString("\r\n")
		}
	}
	if !h.hasDate {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	switch h.framing {
	case framingChunked, framingUntilClose:
		// A body delimited by the backend closing is sent chunked: the client's
		// connection stays usable (as net/http's server does).
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case framingLength:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), h.length, 10))
		bw.WriteString("\r\n")
	case framingNone:
		if h.length >= 0 {
			// HEAD: the length the body would have.
			bw.WriteString("Content-Length: ")
			bw.Write(strconv.AppendInt(bw.AvailableBuffer(), h.length, 10))
			bw.WriteString("\r\n")
		}
	}
	if closeClient {
		bw.WriteString("Connection: close\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// copyBody relays the body, flushing whenever the backend has nothing more buffered so that a
// streamed answer streams.
func (h *respHead) copyBody(bw *bufio.Writer, br *bufio.Reader) error {
	switch h.framing {
	case framingLength:
		return copyN(bw, br, h.length)
	case framingUntilClose:
		for {
			if br.Buffered() == 0 {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
			b, err := br.Peek(max(1, br.Buffered()))
			if len(b) > 0 {
				bw.WriteString(strconv.FormatInt(int64(len(b)), 16))
				bw.WriteString("\r\n")
				bw.Write(b)
				bw.WriteString("\r\n")
				br.Discard(len(b))
			}
			if err == io.EOF {
				h.reusable = false
				_, err := bw.WriteString("0\r\n\r\n")
				return err
			}
			if err != nil {
				return err
			}
		}
	case framingChunked:
		h.inBody = true
		trailerBytes := 0
		for {
			line, err := h.readLine(br)
			if err != nil {
				return err
			}
			sizeText := h.raw[line[0]:line[1]]
			if i := bytes.IndexByte(sizeText, ';'); i >= 0 {
				sizeText = sizeText[:i]
			}
			sizeText = bytes.TrimRight(sizeText, " \t")
			size, err := strconv.ParseInt(string(sizeText), 16, 64)
			if err != nil || size < 0 || len(sizeText) > 16 {
				return errBadUpstream("chunk size")
			}
			h.raw = h.raw[:line[0]]
			if size == 0 {
				bw.WriteString("0\r\n")
				// Trailer fields, checked like the head's.
				for {
					line, err := h.readLine(br)
					if err != nil {
						return err
					}
					l := h.raw[line[0]:line[1]]
					if len(l) == 0 {
						break
					}
					colon := bytes.IndexByte(l, ':')
					if colon <= 0 || !validFieldName(l[:colon]) || !validFieldValue(l[colon+1:]) {
						return errBadUpstream("trailer field")
					}
					if trailerBytes += len(l); trailerBytes > 64<<10 {
						return errBadUpstream("trailer fields longer than 64 KiB")
					}
					bw.Write(l)
					bw.WriteString("\r\n")
					h.raw = h.raw[:line[0]]
				}
				bw.WriteString("\r\n")
				return nil
			}
			bw.WriteString(strconv.FormatInt(size, 16))
			bw.WriteString("\r\n")
			if err := copyN(bw, br, size); err != nil {
				return err
			}
			crlf, err := h.readLine(br)
			if err != nil {
				return err
			}
			if crlf[1] != crlf[0] {
				return errBadUpstream("chunk data longer than its size")
			}
			h.raw = h.raw[:crlf[0]]
			bw.WriteString("\r\n")
			if br.Buffered() == 0 {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// copyN copies n bytes from br to bw through br's buffer.
func copyN(bw *bufio.Writer, br *bufio.Reader, n int64) error {
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		b, _ := br.Peek(int(min(n, int64(br.Buffered()))))
		if _, err := bw.Write(b); err != nil {
			return err
		}
		br.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}
