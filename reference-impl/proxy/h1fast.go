package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1Fast forwards body-less HTTP/1.1 requests (the common GET) on the calling goroutine over
// pooled keep-alive connections. net/http's Transport hands every request to two goroutines
// per connection (a write loop and a read loop); for a request that is only a header block
// that hand-off is most of the proxy's cost. Requests with a body, upgrades, and anything
// unusual go to the standard Transport, which reads and writes concurrently (a backend may
// answer before it has read a body).
//
// It enforces what the Transport enforces: a response header size limit, at most
// max1xxResponses interim responses, a response header timeout; and a connection goes back
// to the pool only when its response was read to the end with nothing after it, and is
// checked again (closed by the peer? unsolicited bytes?) before it is reused. Idle
// connections are reaped after idleTimeout even when their address is never asked for again
// (an endpoint that went away).
type h1Fast struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration
	// maxHeaderBytes bounds a response head (status line and fields); 0 means
	// defaultMaxResponseHeaderBytes.
	maxHeaderBytes int64
	// headerTimeout bounds the wait from the request written to the response head read,
	// for requests whose context has no deadline (a route timeout bounds the others);
	// 0 means none.
	headerTimeout time.Duration

	mu     sync.Mutex
	idle   map[string][]*fastConn
	reaper *time.Timer // armed while idle connections exist
}

// max1xxResponses is net/http's Transport cap on interim responses before the final one.
const max1xxResponses = 5

// defaultMaxResponseHeaderBytes bounds an upstream response head by default, on both paths.
const defaultMaxResponseHeaderBytes = 1 << 20

// errResponseHeaderTimeout is returned when a backend sends no response head in time.
var errResponseHeaderTimeout = errors.New("timeout awaiting response headers")

type fastConn struct {
	nc     net.Conn
	lr     *limitReader // between nc and br: bounds the response head
	br     *bufio.Reader
	bw     *bufio.Writer // writes through out
	out    captureWriter
	sender requestSender // rawIO on Linux, else nil
	idleAt time.Time
	quiet  quietCheck // connQuiet's state, kept so a check allocates nothing

	// headTimer expires the deadline when a response head takes longer than the header
	// timeout; one per connection, re-armed per request.
	headTimer *time.Timer
	timedOut  atomic.Bool
}

// requestSender is rawIO's (rawio_linux.go) way of sending a request: the next Read writes
// p from within its wait for the answer, and waits for it at once instead of first finding
// the socket empty. It checks a pooled connection as quietCheck does, and then returns
// errNotQuiet, having written nothing.
type requestSender interface {
	sendWithRead(p []byte, pooled bool)
}

// errNotQuiet: a pooled connection the backend had closed or sent unasked bytes on; the
// request was not sent, and is retried like one on a stale connection.
var errNotQuiet = errors.New("pooled upstream connection closed or sent unsolicited bytes while idle")

// captureWriter is under a fastConn's bufio.Writer: while capture is set it collects what
// is written (a request head for requestSender) instead of writing it.
type captureWriter struct {
	w       io.Writer
	capture bool
	buf     []byte
}

func (w *captureWriter) Write(p []byte) (int, error) {
	if w.capture {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	return w.w.Write(p)
}

// limitReader fails reads once remain bytes were read, as the Transport's persistConn does
// while it reads a response head.
type limitReader struct {
	r      io.Reader
	remain int64
	limit  int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.remain <= 0 {
		return 0, fmt.Errorf("upstream response headers exceed %d bytes", l.limit)
	}
	p = p[:min(int64(len(p)), l.remain)]
	n, err := l.r.Read(p)
	l.remain -= int64(n)
	return n, err
}

func (l *limitReader) set(limit int64) { l.remain, l.limit = limit, limit }

// eligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	return (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) && r.ContentLength <= 0 &&
		r.Header.Get("Upgrade") == "" && r.Method != http.MethodConnect && len(r.Trailer) == 0
}

// get returns a pooled connection to addr, or nil. The connection is checked to be quiet
// here unless deferCheck is set and it has a requestSender, which then checks it as the
// request is sent.
func (t *h1Fast) get(addr string, deferCheck bool) *fastConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.idle[addr]
	if !ok {
		return nil
	}
	for len(l) > 0 {
		c := l[len(l)-1]
		l = l[:len(l)-1]
		if time.Since(c.idleAt) < t.idleTimeout && (deferCheck && c.sender != nil || c.quiet.ok(c.nc)) {
			t.idle[addr] = l
			return c
		}
		c.nc.Close()
	}
	delete(t.idle, addr)
	return nil
}

func (t *h1Fast) put(addr string, c *fastConn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.idle = map[string][]*fastConn{}
	}
	if len(t.idle[addr]) >= t.maxIdle {
		c.nc.Close()
		return
	}
	t.idle[addr] = append(t.idle[addr], c)
	if t.reaper == nil {
		t.reaper = time.AfterFunc(t.idleTimeout, t.reap)
	}
}

// reap closes the connections idle for idleTimeout and forgets addresses left with none; it
// runs again while idle connections remain.
func (t *h1Fast) reap() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reaper = nil
	now := time.Now()
	next := time.Duration(0)
	for addr, l := range t.idle {
		kept := l[:0]
		for _, c := range l {
			if age := now.Sub(c.idleAt); age >= t.idleTimeout {
				c.nc.Close()
			} else {
				kept = append(kept, c)
				if left := t.idleTimeout - age; next == 0 || left < next {
					next = left
				}
			}
		}
		clear(l[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = kept
		}
	}
	if next > 0 {
		t.reaper = time.AfterFunc(next, t.reap)
	}
}

func (t *h1Fast) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.idle {
		for _, c := range l {
			c.nc.Close()
		}
	}
	t.idle = nil
	if t.reaper != nil {
		t.reaper.Stop()
		t.reaper = nil
	}
}

func (t *h1Fast) newConn(nc net.Conn) *fastConn {
	var rw io.ReadWriter = nc
	if r := newRawIO(nc); r != nil {
		rw = r
	}
	lr := &limitReader{r: rw, remain: math.MaxInt64, limit: math.MaxInt64}
	c := &fastConn{nc: nc, lr: lr, br: bufio.NewReaderSize(lr, 4096), out: captureWriter{w: rw}}
	c.bw = bufio.NewWriterSize(&c.out, 4096)
	c.sender, _ = rw.(requestSender)
	return c
}

func (t *h1Fast) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, addr := r.Context(), r.URL.Host
	for attempt := 0; ; attempt++ {
		var c *fastConn
		if attempt == 0 {
			c = t.get(addr, false) // a retry dials afresh: the next pooled one may be stale too
		}
		reused := c != nil
		if c == nil {
			nc, err := t.dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			c = t.newConn(nc)
		}
		res, err := t.once(ctx, c, r)
		if err == nil {
			return res, nil
		}
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A pooled connection the backend closed while idle fails before any answer. Like
		// net/http, send again on a fresh connection only what is safe to repeat: the
		// request has no body and is idempotent.
		if reused && attempt == 0 && staleConnError(err) && idempotent(r) {
			continue
		}
		return nil, err
	}
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	_, xok := r.Header["X-Idempotency-Key"]
	return ok || xok
}

func staleConnError(err error) bool {
	return err == errNotQuiet || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (t *h1Fast) once(ctx context.Context, c *fastConn, r *http.Request) (*http.Response, error) {
	// Cancelling the request, or the response head taking too long, unblocks reads and
	// writes by expiring the deadline (never cleared: a connection that failed is closed).
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	var headTimer *time.Timer
	if _, routeBound := ctx.Deadline(); t.headerTimeout > 0 && !routeBound {
		if c.headTimer == nil {
			c.headTimer = time.AfterFunc(t.headerTimeout, func() {
				c.timedOut.Store(true)
				c.nc.SetDeadline(time.Unix(1, 0))
			})
		} else {
			c.headTimer.Reset(t.headerTimeout)
		}
		headTimer = c.headTimer
	}
	fail := func(err error) (*http.Response, error) {
		stop()
		if headTimer != nil {
			headTimer.Stop()
		}
		if c.timedOut.Load() && ctx.Err() == nil {
			err = errResponseHeaderTimeout
		}
		return nil, err
	}
	if err := r.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	maxHeader := orDefault(t.maxHeaderBytes, defaultMaxResponseHeaderBytes)
	c.lr.set(maxHeader)
	// Peek first: its raw io.EOF means the backend had closed the connection before answering
	// anything (a stale pooled connection); ReadResponse would blur that into ErrUnexpectedEOF.
	if _, err := c.br.Peek(1); err != nil {
		return fail(err)
	}
	for interim := 0; ; interim++ {
		res, err := http.ReadResponse(c.br, r)
		if err != nil {
			if c.lr.remain <= 0 {
				err = fmt.Errorf("upstream response headers exceed %d bytes", maxHeader)
			}
			return fail(err)
		}
		// Skip interim answers (100 Continue, 103 Early Hints); 101 never happens here since
		// upgrades take the other path.
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			if interim >= max1xxResponses {
				return fail(fmt.Errorf("upstream sent more than %d interim (1xx) responses", max1xxResponses))
			}
			c.lr.set(maxHeader) // each head gets the limit, as in the Transport
			continue
		}
		if headTimer != nil && !headTimer.Stop() {
			// The timer fired as the head arrived: the deadline is spoiled.
			return fail(errResponseHeaderTimeout)
		}
		c.lr.set(math.MaxInt64)
		reusable := !res.Close && !r.Close && (res.ContentLength >= 0 || chunkedResponse(res))
		res.Body = &fastBody{rc: res.Body, t: t, c: c, addr: r.URL.Host, stop: stop, reusable: reusable, ctx: ctx,
			empty: res.Body == http.NoBody}
		return res, nil
	}
}

func chunkedResponse(res *http.Response) bool {
	return len(res.TransferEncoding) > 0 && res.TransferEncoding[0] == "chunked"
}

type fastBody struct {
	rc       io.ReadCloser
	t        *h1Fast
	c        *fastConn
	addr     string
	stop     func() bool
	reusable bool
	ctx      context.Context
	empty    bool // no body at all (HEAD, 204, 304): closing without reading loses nothing
	done     bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		b.finish(false)
		if b.ctx.Err() != nil {
			err = b.ctx.Err()
		}
	}
	return n, err
}

func (b *fastBody) Close() error {
	if !b.done {
		b.finish(b.empty)
	}
	return nil
}

// finish returns the connection to the pool when the whole body was read and nothing (no
// cancellation, no Connection: close, no bytes after the response) spoiled it; otherwise
// closes it.
func (b *fastBody) finish(complete bool) {
	b.done = true
	stopped := b.stop()
	if complete && stopped && b.reusable && b.c.br.Buffered() == 0 {
		b.t.put(b.addr, b.c)
		return
	}
	b.c.nc.Close()
}
