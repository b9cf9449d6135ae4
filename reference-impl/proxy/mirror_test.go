package proxy

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

func mirrorFilter(b ir.Backend, percent float64) ir.Filter {
	return ir.Filter{Type: ir.FilterRequestMirror, RequestMirror: &ir.Mirror{Backend: b, Percent: percent}}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("waited 5s for %s", what)
		}
	}
}

func TestMirror(t *testing.T) {
	t.Parallel()
	primary, m1, m2, half := startBackend(t, "primary"), startBackend(t, "m1"), startBackend(t, "m2"), startBackend(t, "half")
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{
			{Index: 0, Matches: []ir.HTTPMatch{{Path: prefix("/two")}}, Filters: []ir.Filter{
				{Type: ir.FilterRequestHeaderModifier, RequestHeaderModifier: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Before-Mirror", Value: "1"}}}},
				mirrorFilter(m1.irBackend(1), 100), mirrorFilter(m2.irBackend(1), 100)},
				Backends: []ir.Backend{primary.irBackend(1)}},
			{Index: 1, Matches: []ir.HTTPMatch{{Path: prefix("/half")}}, Filters: []ir.Filter{mirrorFilter(half.irBackend(1), 50)},
				Backends: []ir.Backend{primary.irBackend(1)}},
		}}}}))
	t.Run("several mirrors get a copy with the body", func(t *testing.T) {
		req, _ := http.NewRequest("POST", proxyURL(port, "/two/x?q=1"), strings.NewReader("payload"))
		req.Host = "h.example"
		res, err := h1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), `"backend":"primary"`) || !strings.Contains(string(body), `"body":"payload"`) {
			t.Fatalf("primary answer: got %d %s; want 200 from primary with the body", res.StatusCode, body)
		}
		for _, m := range []*testBackend{m1, m2} {
			waitFor(t, "mirror "+m.name, func() bool { return m.last.Load() != nil })
			e := m.last.Load()
			if e.Path != "/two/x" || e.Query != "q=1" || e.Body != "payload" || e.Host != "h.example" || e.Headers.Get("X-Before-Mirror") != "1" {
				t.Errorf("mirror %s saw %+v; want POST /two/x?q=1 host h.example, body payload, X-Before-Mirror 1", m.name, *e)
			}
		}
	})
	// 2,000 requests mirrored at 50%: the mirrored count is binomial(2000, 0.5), sd 22.4; the
	// test allows 6 sd, a false failure probability below 2e-9.
	t.Run("percent", func(t *testing.T) {
		const n = 2000
		c := h1Client()
		for range n {
			res, err := c.Get(proxyURL(port, "/half"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		waitFor(t, "mirrors to finish", func() bool {
			return p.Metrics().Mirrors("test/half", "sent")+p.Metrics().Mirrors("test/half", "failed") == uint64(half.hits.Load())
		})
		got := float64(half.hits.Load())
		if sd := math.Sqrt(n * 0.25); math.Abs(got-n/2) > 6*sd {
			t.Errorf("mirrored: got %.0f of %d; want %d +- %.0f", got, n, n/2, 6*sd)
		}
	})
}

func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// TestMirrorIsolation checks that a mirror delaying 2 s, or refusing connections, does not
// slow the primary. No primary request may take 1 s (the mirror takes 2 s). Beyond that, 450
// sequential requests per variant, measured in interleaved blocks of 150 (so machine load
// drifts affect every variant alike), must keep the no-mirror p50 within 0.5 ms and its p99
// within 5 ms: a mirror on the request path shifts the whole distribution, which the p50
// shows, while the p99 of a few hundred sub-millisecond requests on a shared 2-core machine
// moves by milliseconds with other work (seen: +1.4 ms with the mirror off the path). The
// comparison gets up to three attempts; a mirror that blocks the primary fails all of them.
func TestMirrorIsolation(t *testing.T) {
	primary, slow := startBackend(t, "primary"), startBackend(t, "slow")
	slow.delay = 4 * time.Second
	refused := ir.Backend{Name: "test/refused", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: freePort(t)}}}
	port := freePort(t)
	p := startProxy(t, Options{MirrorConcurrency: 64}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{
			{Index: 0, Matches: []ir.HTTPMatch{{Path: prefix("/plain")}}, Backends: []ir.Backend{primary.irBackend(1)}},
			{Index: 1, Matches: []ir.HTTPMatch{{Path: prefix("/slow")}}, Filters: []ir.Filter{mirrorFilter(slow.irBackend(1), 100)}, Backends: []ir.Backend{primary.irBackend(1)}},
			{Index: 2, Matches: []ir.HTTPMatch{{Path: prefix("/refused")}}, Filters: []ir.Filter{mirrorFilter(refused, 100)}, Backends: []ir.Backend{primary.irBackend(1)}},
		}}}}))
	c := h1Client()
	measure := func(path string, n int) []time.Duration {
		var out []time.Duration
		for range n {
			start := time.Now()
			res, err := c.Post(proxyURL(port, path), "text/plain", strings.NewReader("body"))
			if err != nil {
				t.Fatalf("POST %s: %v", path, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("POST %s: got %d; want 200", path, res.StatusCode)
			}
			d := time.Since(start)
			if d > 2*time.Second {
				// Independent of noise: no primary request may wait for the 4 s mirror. (With a
				// 2 s mirror and a 1 s limit, a correct proxy took 1.198 s once on the loaded
				// machine: half the mirror's delay leaves room for load and still catches a wait.)
				t.Fatalf("POST %s took %v; want < 2s (a mirror must never block the primary)", path, d)
			}
			out = append(out, d)
		}
		return out
	}
	measure("/plain", 50) // warm up connections
	var report []string
	passed := false
	for attempt := 1; attempt <= 3 && !passed; attempt++ {
		lat := map[string][]time.Duration{}
		for range 3 {
			for _, path := range []string{"/plain", "/slow", "/refused"} {
				lat[path] = append(lat[path], measure(path, 150)...)
			}
		}
		base50, base99 := percentile(lat["/plain"], 0.5), percentile(lat["/plain"], 0.99)
		passed = true
		line := fmt.Sprintf("attempt %d: no mirror p50 %v p99 %v", attempt, base50, base99)
		for _, path := range []string{"/slow", "/refused"} {
			p50, p99 := percentile(lat[path], 0.5), percentile(lat[path], 0.99)
			line += fmt.Sprintf("; mirror %s p50 %v p99 %v", path, p50, p99)
			if p50-base50 > 500*time.Microsecond || p99-base99 > 5*time.Millisecond {
				passed = false
			}
		}
		report = append(report, line)
	}
	for _, l := range report {
		t.Log(l)
	}
	if !passed {
		t.Errorf("primary latency with a slow or refusing mirror exceeded the no-mirror p50 by more than 0.5 ms or its p99 by more than 5 ms in all attempts")
	}
	m := p.Metrics()
	t.Logf("mirror results: slow sent %d dropped %d; refused failed %d", m.Mirrors("test/slow", "sent"), m.Mirrors("test/slow", "dropped_saturated"), m.Mirrors("test/refused", "failed"))
	if m.Mirrors("test/slow", "dropped_saturated") == 0 {
		t.Errorf("slow mirror drops: got 0; want > 0 (64 slots, 2s each, over 450 requests)")
	}
	if m.Mirrors("test/refused", "failed") == 0 {
		t.Errorf("refused mirror failures: got 0; want > 0")
	}
}

// TestMirrorBudget checks that mirror copies in flight never hold more body bytes than the
// budget across requests: with a slow mirror, a second copy that would exceed it is dropped,
// and once the first is done the budget is free again.
func TestMirrorBudget(t *testing.T) {
	t.Parallel()
	primary, slow := startBackend(t, "primary"), startBackend(t, "slow")
	slow.delay = 300 * time.Millisecond
	port := freePort(t)
	p := startProxy(t, Options{MirrorBudget: 10}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{
			Filters: []ir.Filter{mirrorFilter(slow.irBackend(1), 100)}, Backends: []ir.Backend{primary.irBackend(1)}}}}}}))
	post := func(body string) {
		t.Helper()
		res, err := h1Client().Post(proxyURL(port, "/"), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("primary: got %d; want 200 whatever happens to the mirror", res.StatusCode)
		}
	}
	m := p.Metrics()
	post("six-b1") // 6 of 10 bytes in flight for 300 ms
	post("six-b2") // 12 > 10: dropped
	if got := m.Mirrors("test/slow", "dropped_budget"); got != 1 {
		t.Errorf("copies dropped over the budget while one is in flight: got %d; want 1", got)
	}
	waitFor(t, "the first copy", func() bool { return m.Mirrors("test/slow", "sent") == 1 })
	post("six-b3") // the budget is free again
	waitFor(t, "the third copy", func() bool { return m.Mirrors("test/slow", "sent") == 2 })
	if got := m.Mirrors("test/slow", "dropped_budget"); got != 1 {
		t.Errorf("copies dropped over the budget: got %d; want 1", got)
	}
	if e := slow.last.Load(); e == nil || e.Body != "six-b3" {
		t.Errorf("last copy at the mirror: got %+v; want body six-b3", e)
	}
}
