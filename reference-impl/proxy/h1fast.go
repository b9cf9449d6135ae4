package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// h1Fast forwards body-less HTTP/1.1 requests (the common GET) on the calling goroutine over
// pooled keep-alive connections. net/http's Transport hands every request to two goroutines
// per connection (a write loop and a read loop); for a request that is only a header block
// that hand-off is most of the proxy's cost. Requests with a body, upgrades, and anything
// unusual go to the standard Transport, which reads and writes concurrently (a backend may
// answer before it has read a body).
type h1Fast struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration

	mu   sync.Mutex
	idle map[string][]*fastConn
}

type fastConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// eligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	return (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) && r.ContentLength <= 0 &&
		r.Header.Get("Upgrade") == "" && r.Method != http.MethodConnect && len(r.Trailer) == 0
}

func (t *h1Fast) get(addr string) *fastConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.idle[addr]
	if !ok {
		return nil
	}
	for len(l) > 0 {
		c := l[len(l)-1]
		l = l[:len(l)-1]
		if time.Since(c.idleAt) < t.idleTimeout {
			t.idle[addr] = l
			return c
		}
		c.nc.Close()
	}
	t.idle[addr] = l
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
}

func (t *h1Fast) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, addr := r.Context(), r.URL.Host
	for attempt := 0; ; attempt++ {
		var c *fastConn
		if attempt == 0 {
			c = t.get(addr) // a retry dials afresh: the next pooled one may be stale too
		}
		reused := c != nil
		if c == nil {
			nc, err := t.dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			c = &fastConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}
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
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (t *h1Fast) once(ctx context.Context, c *fastConn, r *http.Request) (*http.Response, error) {
	// Cancelling the request unblocks reads and writes by expiring the deadline.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		return nil, err
	}
	if err := r.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	// Peek first: its raw io.EOF means the backend had closed the connection before answering
	// anything (a stale pooled connection); ReadResponse would blur that into ErrUnexpectedEOF.
	if _, err := c.br.Peek(1); err != nil {
		return fail(err)
	}
	for {
		res, err := http.ReadResponse(c.br, r)
		if err != nil {
			return fail(err)
		}
		// Skip interim answers (100 Continue, 103 Early Hints); 101 never happens here since
		// upgrades take the other path.
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
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
// cancellation, no Connection: close) spoiled it; otherwise closes it.
func (b *fastBody) finish(complete bool) {
	b.done = true
	stopped := b.stop()
	if complete && stopped && b.reusable {
		b.t.put(b.addr, b.c)
		return
	}
	b.c.nc.Close()
}
