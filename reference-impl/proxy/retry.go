package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// retryPolicy is a compiled ir.Retry (HTTPRouteRetry).
type retryPolicy struct {
	codes    []int
	attempts int           // retries after the first attempt
	backoff  time.Duration // at least this long before each retry
	// attemptTimeout bounds each attempt's wait for a response head (the rule's
	// backendRequest timeout); 0: only the request's own deadline.
	attemptTimeout time.Duration
}

// maxRetryDrain is how much of a retried answer's body is read to keep its connection; a
// longer body closes the connection instead.
const maxRetryDrain = 64 << 10

func compileRetry(rt *ir.Retry, t *ir.Timeouts) *retryPolicy {
	if rt == nil {
		return nil
	}
	p := &retryPolicy{codes: slices.Clone(rt.Codes), attempts: rt.Attempts, backoff: rt.Backoff.D()}
	if t != nil {
		p.attemptTimeout = t.BackendRequest.D()
	}
	return p
}

// errAttemptTimeout ends one attempt that got no response head within the backendRequest
// timeout; it is retried like a connection error, and answered 504 when it is the last.
var errAttemptTimeout = errors.New("proxy: backend request timeout")

// roundTripRetry sends r up to 1+attempts times: again after an answer whose status is in
// codes or a failure without an answer, each time to the backend's next endpoint, after the
// backoff. A request whose body cannot be sent again (no GetBody) gets one attempt. The
// last attempt's answer or error is returned.
func (u *upstreams) roundTripRetry(r *http.Request, f *forward) (*http.Response, error) {
	rp := f.retry
	replayable := r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
	for attempt := 0; ; attempt++ {
		res, err := u.attempt(r, rp.attemptTimeout)
		last := attempt >= rp.attempts || !replayable || r.Context().Err() != nil
		if last || (err == nil && !slices.Contains(rp.codes, res.StatusCode)) {
			if errors.Is(err, errAttemptTimeout) {
				return nil, context.DeadlineExceeded // answered 504 (proxyError)
			}
			return res, err
		}
		if err == nil {
			io.CopyN(io.Discard, res.Body, maxRetryDrain)
			res.Body.Close()
		}
		if rp.backoff > 0 {
			t := time.NewTimer(rp.backoff)
			select {
			case <-r.Context().Done():
				t.Stop()
				return nil, r.Context().Err()
			case <-t.C:
			}
		}
		next := r.Clone(r.Context())
		if r.GetBody != nil {
			if next.Body, err = r.GetBody(); err != nil {
				return nil, err
			}
		}
		if f.b != nil {
			if addr := f.b.next(); addr != "" {
				f.addr = addr
				next.URL.Host = addr
			}
		}
		r = next
	}
}

// attempt is one round trip; timeout > 0 bounds the wait for the response head only (the
// body streams under the request's own context, as with the response head timeout).
func (u *upstreams) attempt(r *http.Request, timeout time.Duration) (*http.Response, error) {
	if timeout <= 0 {
		return u.roundTripOnce(r)
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	timer := time.AfterFunc(timeout, func() { cancel(errAttemptTimeout) })
	res, err := u.roundTripOnce(r.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			res.Body.Close()
		}
		return nil, errAttemptTimeout
	}
	return res, err
}
