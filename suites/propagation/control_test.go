package propagation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
)

// simGateway plays a correct implementation serving one route: version 0 answers 200 from
// backend "prop"; once the change to the dead port is applied, 502 (what a proxy answers when
// its backend refuses connections). Each connection is served by one of two replicas; a
// replica applies the change apply[replica] after it is made (negative: never).
type simGateway struct {
	apply   [2]time.Duration
	changed atomic.Int64 // unix nanos of the change; 0 before
	// connections opened before the change go to replica 0, later ones to replica 1, so a
	// kept-alive load and a probe opening a connection per request can see different replicas.
}

type replicaKey struct{}

func (g *simGateway) start(t *testing.T) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replica := r.Context().Value(replicaKey{}).(int)
		if at := g.changed.Load(); at != 0 && g.apply[replica] >= 0 && time.Since(time.Unix(0, at)) >= g.apply[replica] {
			http.Error(w, "upstream connect error: connection refused", http.StatusBadGateway)
			return
		}
		w.Header().Set(flipHeader, "0")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"backend":"prop"}`)
	}))
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		if g.changed.Load() == 0 {
			return context.WithValue(ctx, replicaKey{}, 0)
		}
		return context.WithValue(ctx, replicaKey{}, 1)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func (g *simGateway) change(context.Context) error {
	g.changed.Store(time.Now().UnixNano())
	return nil
}

// blind is a broken measurement: a transport that hides 5xx answers behind a good one.
type blind struct{ http.RoundTripper }

func (b blind) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.RoundTripper.RoundTrip(r)
	if err != nil || resp.StatusCode < 500 {
		return resp, err
	}
	resp.Body.Close()
	h := http.Header{flipHeader: {"0"}}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(`{"backend":"prop"}`)), Request: r}, nil
}

// The propagation suite's negative control must fail requests (and so pass) on every correct
// implementation whatever its timing, and must not when gatecheck's measurement is blind.
// Issue 15: Traefik, which coalesces changes for ~2 s, applied none of the old control's
// short-lived dead versions and failed it.
func TestDeadPortControl(t *testing.T) {
	t.Parallel()
	const timeout = 4 * time.Second
	for _, tc := range []struct {
		name        string
		apply       [2]time.Duration
		blind       bool
		wantFailed  bool
		wantPremise bool
	}{
		{"applies in 20 ms (the reference)", [2]time.Duration{20 * time.Millisecond, 20 * time.Millisecond}, false, true, false},
		{"coalesces for 2 s (Traefik)", [2]time.Duration{2 * time.Second, 2 * time.Second}, false, true, false},
		{"the load's kept-alive replica applies 3 s after the probe's", [2]time.Duration{3 * time.Second, 20 * time.Millisecond}, false, true, false},
		{"never applies: premise not met, not a verdict on gatecheck", [2]time.Duration{-1, -1}, false, false, true},
		{"blind measurement: the control must catch it", [2]time.Duration{20 * time.Millisecond, 20 * time.Millisecond}, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := &simGateway{apply: tc.apply}
			srv := g.start(t)
			url := srv.URL + "/prop-change-broken"
			d := &traffic.Driver{URL: url, Identity: flipIdentity, Concurrency: 4, Rate: 400}
			if tc.blind {
				d.Client = &http.Client{Transport: blind{http.DefaultTransport.(*http.Transport).Clone()}, Timeout: 5 * time.Second}
			}
			o, err := deadPortControl(t.Context(), d, newProbe(url), g.change, timeout)
			if tc.wantPremise {
				if !errors.Is(err, errPremise) {
					t.Fatalf("deadPortControl() error %v; want premise not met", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("deadPortControl() error %v; want none", err)
			}
			if got := o.failed > 0; got != tc.wantFailed {
				t.Errorf("failed %d requests; want failures: %v (%s)", o.failed, tc.wantFailed, o.message)
			}
			if tc.wantFailed && (len(o.seen) != 1 || o.seen[0] < min(tc.apply[0], tc.apply[1])) {
				t.Errorf("change to first failed request %v; want one sample of at least %v", o.seen, min(tc.apply[0], tc.apply[1]))
			}
		})
	}
}
