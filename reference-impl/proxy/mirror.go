package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// mirrorer sends fire-and-forget copies of requests. A copy runs in its own goroutine with a
// context detached from the client's, its own timeout and its own connection pool, and only
// if one of its mirror backend's concurrency slots is free; otherwise it is dropped and
// counted. So a slow, failing or refusing mirror never delays or fails the primary request,
// and one slow mirror backend cannot starve the others.
type mirrorer struct {
	limit   int
	sems    sync.Map // backend name -> chan struct{}
	timeout time.Duration
	maxBody int64
	// budget bounds the bytes of request body held for mirror copies in flight, across
	// requests and mirror backends; a copy that would exceed it is dropped and counted.
	budget   int64
	inFlight atomic.Int64
	up       *upstreams
	metrics  *Metrics
	log      *slog.Logger
}

// hopHeaders are connection-level headers a copied request must not carry.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Transfer-Encoding", "Upgrade"}

// send mirrors the request as st describes it now to one endpoint of b.
func (m *mirrorer) send(st *reqState, b *backend) {
	if b == nil {
		return
	}
	v, ok := m.sems.Load(b.name)
	if !ok {
		v, _ = m.sems.LoadOrStore(b.name, make(chan struct{}, m.limit))
	}
	sem := v.(chan struct{})
	select {
	case sem <- struct{}{}:
	default:
		m.metrics.mirror(b.name, "dropped_saturated")
		return
	}
	addr := b.next()
	if addr == "" {
		<-sem
		m.metrics.mirror(b.name, "failed_no_endpoints")
		return
	}
	if r := st.r; !st.bodyRead && r.ContentLength > 0 && m.inFlight.Load()+r.ContentLength > m.budget {
		// Known in advance not to fit: do not even read it.
		<-sem
		m.metrics.mirror(b.name, "dropped_budget")
		return
	}
	if !m.readBody(st) {
		<-sem
		m.metrics.mirror(b.name, "dropped_body_too_large")
		return
	}
	size := int64(len(st.body))
	if m.inFlight.Add(size) > m.budget {
		m.inFlight.Add(-size)
		<-sem
		m.metrics.mirror(b.name, "dropped_budget")
		return
	}
	r := st.r
	h := st.header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	u := url.URL{Scheme: "http", Host: addr, Path: st.path, RawQuery: r.URL.RawQuery}
	if b.tls != nil {
		u.Scheme = "https"
	}
	if !st.pathChanged {
		u.RawPath = r.URL.RawPath
	}
	method, host, body := r.Method, st.host, st.body
	h2c, btls := b.h2c, b.tls
	go func() {
		defer func() {
			m.inFlight.Add(-size)
			<-sem
		}()
		ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			m.metrics.mirror(b.name, "failed")
			return
		}
		req.Header, req.Host, req.ContentLength = h, host, int64(len(body))
		if len(body) == 0 {
			req.Body = nil
		}
		ctx = context.WithValue(ctx, forwardKey{}, &forward{addr: addr, h2c: h2c, tls: btls})
		res, err := m.up.RoundTrip(req.WithContext(ctx))
		if err != nil {
			m.metrics.mirror(b.name, "failed")
			m.log.Debug("mirror request failed", "backend", b.name, "endpoint", addr, "error", err)
			return
		}
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		m.metrics.mirror(b.name, "sent")
	}()
}

// readBody buffers the request body once so the primary and the mirrors each get a copy. It
// reports false when the body is larger than maxBody; the primary then still gets all of it.
func (m *mirrorer) readBody(st *reqState) bool {
	if st.bodyRead {
		return true
	}
	r := st.r
	if r.Body == nil || r.Body == http.NoBody {
		st.bodyRead = true
		return true
	}
	// A streaming gRPC call cannot be buffered without stalling it.
	if r.ContentLength > m.maxBody || (r.ContentLength < 0 && isGRPC(r)) {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, m.maxBody+1))
	if err != nil || int64(len(buf)) > m.maxBody {
		// Give the primary what was read followed by the rest.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return false
	}
	st.body, st.bodyRead = buf, true
	return true
}
