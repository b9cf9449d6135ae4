package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// upstreams holds the pooled transports to backends: HTTP/1.1 with keep-alive, and HTTP/2
// over cleartext with prior knowledge for h2c backends and gRPC.
type upstreams struct {
	h1   *http.Transport
	h2c  *http.Transport
	fast *h1Fast // nil: every HTTP/1.1 request uses h1
	// tls are the transports to TLS backends (backendtls.go).
	tls tlsUpstreams
	// headerTimeout bounds the wait for an HTTP/1 response head of a request whose context
	// has no deadline (a route timeout, a mirror's timeout bound the others); 0: none.
	headerTimeout time.Duration
}

var _ http.RoundTripper = (*upstreams)(nil)

// newUpstreams builds the transports; maxConnsPerHost 0 means unlimited. The response head
// limit applies to both, the response head timeout to HTTP/1 only (see
// Options.ResponseHeaderTimeout).
// cert is the backend client certificate in force, shared with the other upstreams of the
// proxy; nil means never one.
func newUpstreams(d *net.Dialer, maxConnsPerHost int, maxResponseHeaderBytes int64, responseHeaderTimeout time.Duration, cert *atomic.Pointer[clientCert]) *upstreams {
	base := func() *http.Transport {
		return &http.Transport{
			Proxy:               nil, // never an environment proxy between us and a Pod
			DialContext:         d.DialContext,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 256,
			MaxConnsPerHost:     maxConnsPerHost,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			Protocols:           new(http.Protocols),
			// MaxResponseHeaderBytes also bounds HTTP/2 (max header list size).
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
		}
	}
	u := &upstreams{h1: base(), h2c: base(), tls: tlsUpstreams{base: base, cert: cert}}
	u.h1.Protocols.SetHTTP1(true)
	u.headerTimeout = responseHeaderTimeout
	u.h2c.Protocols.SetUnencryptedHTTP2(true)
	u.h2c.HTTP2 = &http.HTTP2Config{PingTimeout: 15 * time.Second, SendPingTimeout: 30 * time.Second}
	return u
}

func (u *upstreams) RoundTrip(r *http.Request) (*http.Response, error) {
	f, _ := r.Context().Value(forwardKey{}).(*forward)
	if f == nil {
		return nil, errors.New("proxy: request carries no forwarding decision")
	}
	if f.retry != nil {
		return u.roundTripRetry(r, f) // retry.go
	}
	return u.roundTripOnce(r)
}

// roundTripOnce is one attempt on the transport the request's forwarding decision names.
func (u *upstreams) roundTripOnce(r *http.Request) (*http.Response, error) {
	f := r.Context().Value(forwardKey{}).(*forward)
	if f.tls != nil {
		return u.roundTripTLS(r, f) // backendtls.go
	}
	if f.h2c {
		return u.h2c.RoundTrip(r)
	}
	if u.fast != nil && fastEligible(r) {
		return u.fast.RoundTrip(r)
	}
	return u.withHeaderTimeout(u.h1, r)
}

// withHeaderTimeout is rt.RoundTrip(r) bounded by the response head timeout when r has no
// deadline of its own.
func (u *upstreams) withHeaderTimeout(rt http.RoundTripper, r *http.Request) (*http.Response, error) {
	if _, ok := r.Context().Deadline(); ok || u.headerTimeout <= 0 {
		return rt.RoundTrip(r)
	}
	// Like Transport.ResponseHeaderTimeout, but only for requests without a deadline of
	// their own. RoundTrip returns once the head is read; the context stays alive for the
	// body and ends with the client's request.
	ctx, cancel := context.WithCancelCause(r.Context())
	timer := time.AfterFunc(u.headerTimeout, func() { cancel(errResponseHeaderTimeout) })
	res, err := rt.RoundTrip(r.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			res.Body.Close()
		}
		return nil, errResponseHeaderTimeout
	}
	return res, err
}

func (u *upstreams) CloseIdleConnections() {
	if u.fast != nil {
		u.fast.closeIdle()
	}
	u.h1.CloseIdleConnections()
	u.h2c.CloseIdleConnections()
	u.tls.closeIdle()
}
