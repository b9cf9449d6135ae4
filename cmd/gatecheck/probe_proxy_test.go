package main

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
)

// echoBackend starts one of gatecheck's echo backends on loopback, answering as name.
func echoBackend(t *testing.T, name string) *url.URL {
	t.Helper()
	srv, err := echo.NewServer(echo.Options{Identity: identity.Identity{Backend: name}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	return u
}

// splitProxy is a splitting reverse proxy on loopback in front of real echo backends, as a
// gateway is: mode "random" picks an upstream per request at random by weight (seeded),
// "rr" by smooth weighted round robin (nginx, Envoy; exactly the weights over every
// sum-of-weights requests), "conn" once per client connection.
func splitProxy(t *testing.T, mode string, seed uint64, ups []*url.URL, weights []float64) string {
	t.Helper()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed+1))
	total := 0.0
	for _, w := range weights {
		total += w
	}
	current := make([]float64, len(weights))
	perConn := map[string]int{}
	random := func() int {
		u := rng.Float64() * total
		for i, w := range weights {
			if u < w {
				return i
			}
			u -= w
		}
		return len(weights) - 1
	}
	pick := func(r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		switch mode {
		case "rr":
			best := 0
			for i, w := range weights {
				current[i] += w
				if current[i] > current[best] {
					best = i
				}
			}
			current[best] -= total
			return best
		case "conn":
			i, ok := perConn[r.RemoteAddr]
			if !ok {
				i = random()
				perConn[r.RemoteAddr] = i
			}
			return i
		}
		return random()
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(ups[pick(pr.In)])
	}}
	ts := httptest.NewServer(rp)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestProbeWeightsThroughProxy is the setting: gatecheck probe weights against a
// splitting proxy in front of two echo backends on loopback. Each must-fail row runs with one
// request in flight, so the seeded proxy's choices follow the send order and the row is
// deterministic; the exact probability with which such a row fails is in the output.
func TestProbeWeightsThroughProxy(t *testing.T) {
	t.Parallel()
	ups := []*url.URL{echoBackend(t, "v2"), echoBackend(t, "v3")}
	tests := []struct {
		name     string
		mode     string
		served   []float64
		expect   string
		extra    []string
		wantCode int
		wantOut  []string
	}{
		{"random 90/10 passes", "random", []float64{90, 10}, "v2=90,v3=10", nil, 0,
			[]string{"verdict: PASS: consistent with v2=90%, v3=10% per request", "skew up 13% -> 0.9907"}},
		{"random 87/13 fails", "random", []float64{87, 13}, "v2=90,v3=10", []string{"--concurrency", "1"}, 1,
			[]string{"evidence it is too high"}},
		{"random 93/7 fails", "random", []float64{93, 7}, "v2=90,v3=10", []string{"--concurrency", "1"}, 1,
			[]string{"evidence it is too low"}},
		{"100/0 served where 97/3 is declared fails", "random", []float64{100, 0}, "v2=97,v3=3", nil, 1,
			[]string{"backend v3: declared 3%, observed 0.0%", "nothing 0% -> 1"}},
		{"47/53 served where 50/50 is declared fails", "random", []float64{47, 53}, "v2=50,v3=50", []string{"--concurrency", "1"}, 1,
			[]string{"backend v2: declared 50%", "skew down 47% -> 0.9904"}},
		{"round robin at exactly 90/10 passes", "rr", []float64{90, 10}, "v2=90,v3=10", nil, 0,
			[]string{"verdict: PASS: consistent with v2=90%, v3=10% per request"}},
		{"split per connection is named", "conn", []float64{50, 50}, "v2=50,v3=50", nil, 1,
			[]string{"verdict: FAIL: split per connection, not per request"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw := splitProxy(t, tc.mode, uint64(100+i), ups, tc.served)
			start := time.Now()
			out, code, err := runCLI(t, append([]string{"probe", "weights", "--url", gw + "/api", "--expect", tc.expect}, tc.extra...)...)
			t.Logf("%s: exit %d in %s\n%s", tc.name, code, time.Since(start).Round(time.Millisecond), out)
			if code != tc.wantCode {
				t.Errorf("exit code: got %d; want %d (err: %v)", code, tc.wantCode, err)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output: missing %q", w)
				}
			}
			if tc.wantCode == 1 && (err == nil || !strings.Contains(err.Error(), "weights verdict failed")) {
				t.Errorf("error: got %v; want a failed verdict", err)
			}
		})
	}
}
