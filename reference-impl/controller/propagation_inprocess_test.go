package controller

// In-process route propagation: the create-to-serving path of the cluster test
// (propagation_test.go, tag cluster) without a cluster. Each added route goes through what a
// reconcile does on the hot path (translate the route onto the previous result, publish), the real delivery
// server over loopback, the real proxy delivery client, the real proxy, and a loopback echo
// backend; the clock stops at the first of three consecutive 200s for the route's hostname.
//
//	go test ./reference-impl/controller -run TestPropagationInProcess -v
//
// PROPAGATION_ROUTES (default 1000) and PROPAGATION_SAMPLES (default 50) size it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/incremental"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// inProcess is one controller-side delivery server, one proxy following it and an echo
// backend, all on loopback.
type inProcess struct {
	in *translate.Input
	// template is the shape of every added route.
	template *gwv1.HTTPRoute
	d        *Delivery
	port     int32
	hc       *http.Client
	applies  *timedApplier
	// translator, when set, is used as Reconciler.Reconcile uses it; nil translates everything.
	translator *incremental.Translator
	// per-stage totals over the measured additions
	translate, publish time.Duration
}

// timedApplier records how long each ApplyUpdate took (validation and compiling of what the
// update changed; decoding happens before it, in the delivery client).
type timedApplier struct {
	p     *proxy.Proxy
	mu    sync.Mutex
	total time.Duration
	n     int
}

func (a *timedApplier) ApplyUpdate(u *ir.Update) error {
	start := time.Now()
	err := a.p.ApplyUpdate(u)
	a.mu.Lock()
	a.total += time.Since(start)
	a.n++
	a.mu.Unlock()
	return err
}

func (a *timedApplier) reset() (time.Duration, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, n := a.total, a.n
	a.total, a.n = 0, 0
	return t, n
}

func newInProcess(t *testing.T, routes int, incr bool) *inProcess {
	t.Helper()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(echo.Close)
	echoPort := int32(echo.Listener.Addr().(*net.TCPAddr).Port)

	in := syntheticInput(max(routes, 1))
	template := in.HTTPRoutes[0].DeepCopy()
	in.HTTPRoutes = in.HTTPRoutes[:routes]
	port := freePort(t)
	in.Gateways[0].Spec.Listeners[0].Port = gwv1.PortNumber(port)
	in.EndpointSlices = []*discoveryv1.EndpointSlice{{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "bench", UID: "uid-echo-1", ResourceVersion: "1", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(echoPort)}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
	}}

	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	ca := mustCA(t)
	srv := tlsDelivery(t, d, ca)
	t.Cleanup(srv.Close)
	// Cleanups run last-first: the stream must end before srv.Close, which waits for it.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
	t.Cleanup(func() { p.Close(context.Background()) })
	ip := &inProcess{in: in, template: template, d: d, port: port, applies: &timedApplier{p: p},
		hc: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	t.Cleanup(ip.hc.CloseIdleConnections)
	if incr {
		ip.translator = incremental.New()
	}
	c := &delivery.Client{BaseURL: srv.URL, Gateway: ir.NamespacedName{Namespace: "bench", Name: "gw"}, Proxy: "pod-a",
		HTTP: proxyClient(t, ca, types.NamespacedName{Namespace: "bench", Name: "gw"})}
	go c.Run(ctx, ip.applies)

	ip.reconcile(t)
	key := types.NamespacedName{Namespace: "bench", Name: "gw"}
	if ok, msg := d.WaitAcked(ctx, key, []string{"pod-a"}, 30*time.Second); !ok {
		t.Fatalf("initial %d-route snapshot not applied within 30s: %s", routes, msg)
	}
	ip.applies.reset()
	return ip
}

// reconcile does what Reconciler.Reconcile does on the propagation path: with a translator,
// apply the changed routes incrementally (incremental.Translator.Routes; translating everything
// when it declines), else translate the whole input; then publish the Gateway's snapshot.
func (ip *inProcess) reconcile(t *testing.T, changed ...incremental.RouteChange) {
	start := time.Now()
	var out *translate.Output
	incremental := false
	if ip.translator != nil {
		if len(changed) > 0 {
			out, incremental = ip.translator.Routes(ip.in, changed)
		}
		if !incremental {
			out = ip.translator.Translate(ip.in)
		}
	} else {
		out = translate.Translate(ip.in)
	}
	translated := time.Now()
	var keys []ir.RouteKey // nil: compare every route
	if incremental {
		for _, c := range changed {
			keys = append(keys, ir.RouteKey{Kind: ir.RouteKind(c.Kind), Namespace: c.Key.Namespace, Name: c.Key.Name})
		}
	}
	for _, res := range out.Gateways {
		if !res.Valid {
			t.Fatalf("gateway invalid after translation: %s", res.Invalid)
		}
		if _, err := ip.d.PublishRoutes(res.Snapshot, keys); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	ip.translate += translated.Sub(start)
	ip.publish += time.Since(translated)
}

func (ip *inProcess) get(host string) int {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(int(ip.port))+"/", nil)
	req.Host = host
	res, err := ip.hc.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// add creates one route (as a watch event would deliver it) and returns the time until the
// first of three consecutive 200s for its hostname, polling every poll.
func (ip *inProcess) add(t *testing.T, name string, poll time.Duration) (time.Duration, int64) {
	host := name + ".bench.example"
	rt := ip.template.DeepCopy()
	rt.Name, rt.CreationTimestamp = name, metav1.NewTime(time.Now())
	rt.UID, rt.Generation = types.UID("uid-"+name), 1
	rt.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(host)}
	if code := ip.get(host); code != http.StatusNotFound {
		t.Fatalf("route %s before creation: got status %d; want 404", name, code)
	}
	var bad atomic.Int64
	done := make(chan time.Time, 1)
	start := time.Now()
	go func() {
		var first time.Time
		ok := 0
		for time.Since(start) < 30*time.Second {
			switch code := ip.get(host); code {
			case http.StatusOK:
				if ok == 0 {
					first = time.Now()
				}
				if ok++; ok == 3 {
					done <- first
					return
				}
			case http.StatusNotFound:
				ok = 0
			default:
				ok = 0
				bad.Add(1)
			}
			time.Sleep(poll)
		}
		close(done)
	}()
	ip.in.HTTPRoutes = append(ip.in.HTTPRoutes, rt)
	ip.reconcile(t, incremental.RouteChange{Kind: "HTTPRoute", Key: types.NamespacedName{Namespace: rt.Namespace, Name: rt.Name}, Object: rt})
	first, ok := <-done
	if !ok {
		t.Fatalf("route %s: no 3 consecutive 200s within 30s", name)
	}
	return first.Sub(start), bad.Load()
}

type propagation struct {
	lat                       []time.Duration
	bad                       int64
	translate, publish, apply time.Duration
	applies                   int
}

func measurePropagation(t *testing.T, routes, samples int, poll time.Duration, incr bool) propagation {
	setupStart := time.Now()
	ip := newInProcess(t, routes, incr)
	t.Logf("%d routes: initial snapshot applied after %v", routes, time.Since(setupStart).Round(time.Millisecond))
	var r propagation
	for i := range samples {
		d, bad := ip.add(t, fmt.Sprintf("probe-%05d", i), poll)
		r.lat = append(r.lat, d)
		r.bad += bad
	}
	r.translate, r.publish = ip.translate, ip.publish
	r.apply, r.applies = ip.applies.reset()
	return r
}

func reportPropagation(t *testing.T, what string, r propagation) {
	n := time.Duration(max(len(r.lat), 1))
	t.Logf("%s: n=%d p50 %v p90 %v p99 %v max %v; per addition: translate %v, publish (diff, encode the delta; validation deferred) %v, proxy ApplyUpdate %v (%d applies); bad statuses %d",
		what, len(r.lat), latencyPct(r.lat, 50), latencyPct(r.lat, 90), latencyPct(r.lat, 99), latencyPct(r.lat, 100),
		(r.translate / n).Round(10*time.Microsecond), (r.publish / n).Round(10*time.Microsecond),
		(r.apply / time.Duration(max(r.applies, 1))).Round(10*time.Microsecond), r.applies, r.bad)
}

// TestPropagationInProcess measures create-to-serving latency with PROPAGATION_ROUTES other
// routes present, against the same with no other routes (the baseline, same run).
func TestPropagationInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("propagation measurement skipped in -short mode")
	}
	samples := envIntOr("PROPAGATION_SAMPLES", 50)
	routes := envIntOr("PROPAGATION_ROUTES", 1000)
	// Poll every millisecond: the cluster test's 5 ms would hide differences of a few ms.
	const poll = time.Millisecond
	base := measurePropagation(t, 0, min(samples, 30), poll, true)
	reportPropagation(t, "baseline (no other routes)", base)
	full := measurePropagation(t, routes, samples, poll, false)
	reportPropagation(t, fmt.Sprintf("with %d routes, every route translated on each change (translate.Translate)", routes), full)
	loaded := measurePropagation(t, routes, samples, poll, true)
	reportPropagation(t, fmt.Sprintf("with %d routes, as the controller runs (incremental.Translator: route changes applied incrementally)", routes), loaded)
	t.Logf("incremental vs whole translation: p50 ratio %.2f, p99 ratio %.2f", float64(latencyPct(loaded.lat, 50))/float64(latencyPct(full.lat, 50)), float64(latencyPct(loaded.lat, 99))/float64(latencyPct(full.lat, 99)))
	t.Logf("p50 ratio loaded/baseline %.2f, p99 ratio %.2f (target: p99 <= 30ms on the cluster)",
		float64(latencyPct(loaded.lat, 50))/float64(latencyPct(base.lat, 50)), float64(latencyPct(loaded.lat, 99))/float64(latencyPct(base.lat, 99)))
	if loaded.bad > 0 || base.bad > 0 {
		t.Errorf("got %d responses other than 404/200 while routes propagated; want 0", loaded.bad+base.bad)
	}
}

// envIntOr, latencyPct and quantileCI serve this test and the cluster test
// (propagation_test.go, tag cluster), which is in the same package.
func envIntOr(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func latencyPct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// quantileCI is a distribution-free confidence interval for the q-quantile of the population
// ds was drawn from: the order statistics whose ranks bound a Binomial(n, q) count with
// probability at least conf (an end that cannot be bounded is the sample's min or max).
func quantileCI(ds []time.Duration, q, conf float64) (time.Duration, time.Duration) {
	n := len(ds)
	if n == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// cdf[k] = P(Binomial(n, q) <= k)
	cdf := make([]float64, n+1)
	acc := 0.0
	for k := 0; k <= n; k++ {
		lg, _ := math.Lgamma(float64(n + 1))
		lk, _ := math.Lgamma(float64(k + 1))
		lnk, _ := math.Lgamma(float64(n - k + 1))
		acc += math.Exp(lg - lk - lnk + float64(k)*math.Log(q) + float64(n-k)*math.Log1p(-q))
		cdf[k] = acc
	}
	tail := (1 - conf) / 2
	// The interval [s[l], s[u]] (0-based ranks) covers the quantile with probability
	// cdf[u] - cdf[l] (P(l < count <= u), count being the samples below the quantile).
	l := 0
	for l+1 < n && cdf[l+1] <= tail {
		l++
	}
	u := n - 1
	for u-1 >= 0 && cdf[u-1] >= 1-tail {
		u--
	}
	return s[l], s[u]
}

func TestQuantileCI(t *testing.T) {
	t.Parallel()
	ds := make([]time.Duration, 1000)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	// Median of 1,000: the 95% interval is ranks 469..531 (1-based), by the normal
	// approximation 500 +- 1.96*sqrt(250).
	if lo, hi := quantileCI(ds, 0.5, 0.95); lo < 465*time.Millisecond || lo > 472*time.Millisecond || hi < 529*time.Millisecond || hi > 536*time.Millisecond {
		t.Errorf("median CI of 1..1000 ms = %v..%v; want about 469ms..532ms", lo, hi)
	}
	// p99 of 300: Binomial(300, 0.99) has mean 297 and sd 1.7, so the interval ends at the
	// maximum and starts a few ranks below the 297th.
	lo, hi := quantileCI(ds[:300], 0.99, 0.95)
	if hi != 300*time.Millisecond || lo < 290*time.Millisecond || lo > 295*time.Millisecond {
		t.Errorf("p99 CI of 1..300 ms = %v..%v; want 290-295ms..300ms", lo, hi)
	}
}
