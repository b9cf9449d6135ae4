package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"strconv"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// forwardKey keys the *forward a request carries through the ReverseProxy.
type forwardKey struct{}

// forward is the routing decision for one request, read by the ReverseProxy hooks.
type forward struct {
	addr     string
	h2c      bool
	tls      *backendTLS // nil: cleartext
	grpc     bool
	respMods []*ir.HeaderModifier
	route    string
	backend  string
	code     int
	// retry is the rule's retry policy (retry.go), b the backend whose endpoints it uses.
	retry *retryPolicy
	b     *backend
}

// reqState is the request as the rule's filters have modified it so far. The incoming
// request is never mutated: its header map is copied on the first change.
type reqState struct {
	r           *http.Request
	header      http.Header
	headerOwned bool
	host        string
	path        string
	pathChanged bool
	body        []byte // buffered body, when a mirror needed a copy
	bodyRead    bool
	prefix      string // PathPrefix of the selecting match, for ReplacePrefixMatch
	isPrefix    bool
	scheme      string
	port        int32
}

func (s *reqState) ownHeader() http.Header {
	if !s.headerOwned {
		s.header = s.header.Clone()
		s.headerOwned = true
	}
	return s.header
}

func (p *Proxy) serveHTTP(port int32, w http.ResponseWriter, r *http.Request) {
	c := p.cur.Load()
	var pc *portConfig
	if c != nil {
		pc = c.ports[port]
	}
	grpc := isGRPC(r)
	if pc == nil {
		p.local(w, r, grpc, "", "", http.StatusNotFound, "no listener on this port")
		return
	}
	// Matching, filters, mirrors and the upstream all see the normalised path (path.go).
	nr, perr := withNormalPath(r)
	if perr != nil {
		p.local(w, r, grpc, "", "", perr.status, "request path refused: "+perr.reason)
		return
	}
	r = nr
	host := normalizeHost(r.Host)
	lis, ok := pc.listeners.first(host)
	if r.TLS != nil {
		// A connection whose SNI (or, without SNI, whose certificate) chose another
		// listener must not be used for this host (RFC 9110 421), or a client could reach
		// one listener's routes with another's cert.
		if pc.connListener(r.TLS.ServerName) != lis {
			p.local(w, r, grpc, "", "", http.StatusMisdirectedRequest, "misdirected request")
			return
		}
	}
	if !ok {
		p.local(w, r, grpc, "", "", http.StatusNotFound, "no listener for host")
		return
	}
	if grpc && lis.hasGRPC {
		p.serveGRPC(w, r, lis, host)
		return
	}
	e := matchHTTP(lis.http, host, r)
	if e == nil {
		p.local(w, r, grpc, "", "", http.StatusNotFound, "no route")
		return
	}
	st := &reqState{r: r, header: r.Header, host: r.Host, path: r.URL.Path, port: port, scheme: "http",
		prefix: e.path, isPrefix: e.kind == pathPrefix}
	if st.path == "" {
		st.path = "/"
	}
	if r.TLS != nil {
		st.scheme = "https"
	}
	rule := e.rule
	ctx := r.Context()
	if rule.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rule.timeout)
		defer cancel()
	}
	var f *forward
	if hw, ok := w.(*h1Writer); ok {
		f = &hw.c.fwd // h1Server's connection keeps one, reused per request
		*f = forward{route: rule.label, grpc: grpc, retry: rule.retry}
	} else {
		f = &forward{route: rule.label, grpc: grpc, retry: rule.retry}
	}
	if p.applyFilters(w, st, rule.filters, f) {
		return
	}
	b := rule.backends.pick()
	if b == nil {
		p.local(w, r, grpc, rule.label, "", http.StatusInternalServerError, "no backend with weight")
		return
	}
	f.backend = b.name
	if p.applyFilters(w, st, b.filters, f) {
		return
	}
	p.forward(ctx, w, st, b, f)
}

func (p *Proxy) serveGRPC(w http.ResponseWriter, r *http.Request, lis *listenerConfig, host string) {
	e := matchGRPC(lis.grpc, host, r)
	if e == nil {
		p.local(w, r, true, "", "", http.StatusNotFound, "no route")
		return
	}
	rule := e.rule
	st := &reqState{r: r, header: r.Header, host: r.Host, path: r.URL.Path, scheme: "http"}
	f := &forward{route: rule.label, grpc: true}
	if p.applyFilters(w, st, rule.filters, f) {
		return
	}
	b := rule.backends.pick()
	if b == nil {
		p.local(w, r, true, rule.label, "", http.StatusInternalServerError, "no backend with weight")
		return
	}
	f.backend = b.name
	p.forward(r.Context(), w, st, b, f)
}

// applyFilters runs filters in order; it returns true when one of them answered the request.
func (p *Proxy) applyFilters(w http.ResponseWriter, st *reqState, fs []filter, f *forward) bool {
	for i := range fs {
		flt := &fs[i]
		switch flt.Type {
		case ir.FilterRequestHeaderModifier:
			applyHeaderModifier(st.ownHeader(), flt.RequestHeaderModifier)
		case ir.FilterResponseHeaderModifier:
			f.respMods = append(f.respMods, flt.ResponseHeaderModifier)
		case ir.FilterURLRewrite:
			if h := flt.URLRewrite.Hostname; h != nil {
				st.host = *h
			}
			if m := flt.URLRewrite.Path; m != nil {
				st.path = modifyPath(st.path, m, st.prefix, st.isPrefix)
				st.pathChanged = true
			}
		case ir.FilterRequestRedirect:
			rd := flt.RequestRedirect
			loc := redirectLocation(rd, st.scheme, normalizeHost(st.host), st.port, st.path, st.r.URL.RawQuery, st.prefix, st.isPrefix)
			for _, m := range f.respMods {
				applyHeaderModifier(w.Header(), m)
			}
			w.Header().Set("Location", loc)
			code := redirectStatus(rd)
			w.WriteHeader(code)
			p.metrics.request(f.route, "", code)
			return true
		case ir.FilterCORS:
			if p.cors(w, st, flt.CORS, f) { // cors.go
				return true
			}
		case ir.FilterRequestMirror:
			if pct := flt.RequestMirror.Percent; pct < 100 && rand.Float64()*100 >= pct {
				continue
			}
			p.mirror.send(st, flt.mirror)
		}
	}
	return false
}

// forward proxies the request to one endpoint of b.
func (p *Proxy) forward(ctx context.Context, w http.ResponseWriter, st *reqState, b *backend, f *forward) {
	addr := b.next()
	if addr == "" {
		// The spec: a backendRef that is invalid or has no endpoints gets a 500 for its share.
		p.local(w, st.r, f.grpc, f.route, b.name, http.StatusInternalServerError, "backend has no ready endpoints")
		return
	}
	f.addr, f.h2c, f.tls, f.b = addr, b.h2c, b.tls, b
	if hw, ok := w.(*h1Writer); ok && !b.h2c && b.tls == nil && p.up.fast != nil && f.retry == nil {
		// Served by h1Server (h1serve.go): a GET or HEAD without a body.
		p.forwardH1(ctx, hw, st, f)
		p.metrics.request(f.route, f.backend, f.code)
		return
	}
	if f.retry != nil {
		p.mirror.readBody(st) // a retried request's body is sent again (up to MirrorMaxBody)
	}
	r2 := st.r.WithContext(context.WithValue(ctx, forwardKey{}, f))
	r2.Header = st.header
	r2.Host = st.host
	if st.pathChanged {
		u := *st.r.URL
		u.Path, u.RawPath = st.path, ""
		r2.URL = &u
	}
	if st.bodyRead {
		r2.Body = io.NopCloser(bytes.NewReader(st.body))
		r2.ContentLength = int64(len(st.body))
		body := st.body
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	p.rp.ServeHTTP(w, r2)
	p.metrics.request(f.route, f.backend, f.code)
}

func rewriteUpstream(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardKey{}).(*forward)
	pr.Out.URL.Scheme = "http"
	if f.tls != nil {
		pr.Out.URL.Scheme = "https"
	}
	pr.Out.URL.Host = f.addr
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

func modifyResponse(res *http.Response) error {
	f := res.Request.Context().Value(forwardKey{}).(*forward)
	f.code = res.StatusCode
	for _, m := range f.respMods {
		applyHeaderModifier(res.Header, m)
	}
	return nil
}

func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	f, _ := r.Context().Value(forwardKey{}).(*forward)
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; nobody reads an answer. 499 labels it in metrics (nginx's code).
		if f != nil {
			f.code = 499
		}
		return
	}
	if f != nil {
		f.code = code
		p.log.Debug("upstream request failed", "route", f.route, "backend", f.backend, "endpoint", f.addr, "error", err)
		if f.grpc {
			grpcStatus(w, code)
			return
		}
	}
	w.WriteHeader(code)
}

// local answers a request the proxy handles itself (no route, no endpoint, misdirected).
// gRPC clients get a trailers-only gRPC status instead, as the conformance suite expects
// (UNIMPLEMENTED for an unmatched method).
func (p *Proxy) local(w http.ResponseWriter, r *http.Request, grpc bool, route, backend string, code int, msg string) {
	p.metrics.request(route, backend, code)
	if grpc && r.ProtoMajor == 2 {
		grpcStatus(w, code)
		return
	}
	http.Error(w, msg, code)
}

// grpcStatus writes a trailers-only gRPC response for an HTTP status, mapped the way gRPC
// maps HTTP errors (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md),
// except 404, which means no route matched: UNIMPLEMENTED.
func grpcStatus(w http.ResponseWriter, httpCode int) {
	code := 2 // UNKNOWN
	switch httpCode {
	case http.StatusNotFound:
		code = 12 // UNIMPLEMENTED
	case http.StatusGatewayTimeout:
		code = 4 // DEADLINE_EXCEEDED
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
		code = 14 // UNAVAILABLE
	case http.StatusMisdirectedRequest:
		code = 7 // PERMISSION_DENIED
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", http.StatusText(httpCode))
	w.WriteHeader(http.StatusOK)
}
