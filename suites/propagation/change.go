package propagation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/propagation"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
)

// gateway-api-bench's route change: every changeEvery the route swaps backend port and
// changes a response header, changes times; pass only with 100% 2xx.
const (
	changeEvery = 200 * time.Millisecond
	changes     = 20
	flipHeader  = "X-Gatecheck-Flip"
)

// flipIdentity names a response "backend|flip", so each result says which route version
// served it.
func flipIdentity(resp *http.Response, body []byte) (string, error) {
	var m struct {
		Backend string `json:"backend"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Backend == "" {
		return "", fmt.Errorf("response body: no backend field (%v)", err)
	}
	return m.Backend + "|" + resp.Header.Get(flipHeader), nil
}

type stamped struct {
	at time.Time
	r  traffic.Result
}

// flipOutcome is what a run of route changes under load measured.
type flipOutcome struct {
	failed   int
	message  string
	seen     []time.Duration
	summary  traffic.Summary
	decision model.Decision
}

// load is steady traffic on one route, every result recorded with the time it ended: the
// measurement both specs below judge, so the negative control exercises exactly the code that
// passes the positive spec (driver, recording, tally).
type load struct {
	d    *traffic.Driver
	mu   sync.Mutex
	rec  []stamped
	stop atomic.Bool
	done chan loadOut
}

type loadOut struct {
	sum traffic.Summary
	err error
}

func startLoad(ctx context.Context, d *traffic.Driver) *load {
	l := &load{d: d, done: make(chan loadOut, 1)}
	go func() {
		// Stopping through observe (not by cancelling ctx) lets requests in flight finish,
		// so none is cut short and miscounted as a failure.
		sum, err := d.Run(ctx, traffic.Limit{Duration: 5 * time.Minute}, func(r traffic.Result) bool {
			l.mu.Lock()
			l.rec = append(l.rec, stamped{time.Now(), r})
			l.mu.Unlock()
			return l.stop.Load()
		})
		l.done <- loadOut{sum, err}
	}()
	return l
}

// last returns the last n results (fewer when fewer ended).
func (l *load) last(n int) []stamped {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rec[max(0, len(l.rec)-n):])
}

// failedSince reports whether a request that ended after t failed.
func (l *load) failedSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.rec) - 1; i >= 0 && l.rec[i].at.After(t); i-- {
		if !l.rec[i].r.OK() {
			return true
		}
	}
	return false
}

// finish stops the load and returns its summary and every result.
func (l *load) finish() (traffic.Summary, []stamped, error) {
	l.stop.Store(true)
	out := <-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return out.sum, l.rec, out.err
}

// tally counts the failed requests of rec (with up to three described, times from t0) and the
// time each route version (by identity) was first served.
func tally(rec []stamped, t0 time.Time) (failed int, failures []string, firstSeen map[string]time.Time) {
	firstSeen = map[string]time.Time{}
	for _, s := range rec {
		if !s.r.OK() {
			failed++
			if len(failures) < 3 {
				failures = append(failures, fmt.Sprintf("status %d err %v at +%s", s.r.Status, s.r.Err, s.at.Sub(t0).Round(time.Millisecond)))
			}
			continue
		}
		if _, ok := firstSeen[s.r.Backend]; !ok {
			firstSeen[s.r.Backend] = s.at
		}
	}
	return failed, failures, firstSeen
}

// flipData is the change.yaml data of route version i, served by svc:port.
func flipData(route string, i int, svc string, port int) map[string]any {
	return map[string]any{"Route": route, "Service": svc, "Port": port, "Flip": strconv.Itoa(i)}
}

// flipDriver is the driver both specs measure with: every response names the route version
// (backend|flip header) that served it.
func flipDriver(route string) *traffic.Driver {
	d := env.Driver(url("/" + route))
	d.Identity = flipIdentity
	d.Concurrency = 4
	d.Rate = max(50, 400*env.Config.Scale)
	return d
}

// runFlips applies version(0) to route, converges, then under steady load applies
// version(1..n) every changeEvery, waits until the last version is served and counts every
// request that failed. version returns the Service and port of step i.
func runFlips(ctx context.Context, route string, n int, version func(i int) (svc string, port int)) flipOutcome {
	GinkgoHelper()
	data := func(i int) map[string]any {
		svc, port := version(i)
		return flipData(route, i, svc, port)
	}
	objs := env.Render(fixtures.Files, "change.yaml", data(0))
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "propagation")
	d := flipDriver(route)
	_, err := gwtest.ConvergeOn(ctx, d, "prop|0")
	Expect(err).NotTo(HaveOccurred())

	l := startLoad(ctx, d)
	time.Sleep(500 * time.Millisecond)

	applied := make([]time.Time, n+1)
	t0 := time.Now()
	for i := 1; i <= n; i++ {
		time.Sleep(time.Until(t0.Add(time.Duration(i-1) * changeEvery)))
		applied[i] = time.Now()
		Expect(env.Update(ctx, env.Render(fixtures.Files, "change.yaml", data(i)))).To(Succeed(), "change %d", i)
	}
	final := fmt.Sprintf("prop|%d", n)
	Eventually(func(g Gomega) {
		last := l.last(gwtest.ConvergeInARow)
		g.Expect(len(last)).To(BeNumerically(">=", gwtest.ConvergeInARow))
		for _, s := range last {
			g.Expect(s.r.Backend).To(Equal(final), "the last route version is not served yet")
		}
	}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).WithPolling(50 * time.Millisecond).Should(Succeed())
	time.Sleep(time.Second)
	sum, rec, err := l.finish()
	Expect(err).NotTo(HaveOccurred())

	var o flipOutcome
	o.summary = sum
	var failures []string
	var firstSeen map[string]time.Time
	o.failed, failures, firstSeen = tally(rec, t0)
	for i := 1; i <= n; i++ {
		if at, ok := firstSeen[fmt.Sprintf("prop|%d", i)]; ok {
			o.seen = append(o.seen, at.Sub(applied[i]))
		}
	}
	sorted := slices.Clone(o.seen)
	slices.Sort(sorted)
	lag := "no version observed"
	if len(sorted) > 0 {
		lag = fmt.Sprintf("change to first response p50 %s, max %s", sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	}
	o.message = fmt.Sprintf("%d requests at %.0f/s while %d changes were applied %s apart: %d failed (%s); %d of %d route versions observed before the next replaced them; %s",
		len(rec), d.Rate, n, changeEvery, o.failed, strings.Join(failures, "; "), len(o.seen), n, lag)
	o.decision = gwtest.DecisionOf(o.failed == 0)
	return o
}

// probe is evidence independent of the code the negative control tests (traffic.Driver, the
// load's recording, tally): plain net/http, a new connection for every request, so it also
// reaches whichever data-plane replica the Service picks each time.
type probe struct {
	url    string
	client *http.Client
}

func newProbe(url string) *probe {
	return &probe{url: url, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

// get returns the response's status, or the transport error.
func (p *probe) get(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitFor returns when n responses in a row satisfy want (status 0 for a transport error) and
// the time the last of them ended, or an error naming the last response after timeout.
func (p *probe) waitFor(ctx context.Context, n int, timeout time.Duration, want func(status int) bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inARow, last := 0, "no response"
	for {
		st, err := p.get(ctx)
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("after %s, last response %s", timeout, last)
		}
		last = fmt.Sprintf("status %d", st)
		if err != nil {
			last = "error " + err.Error()
		}
		if want(st) {
			if inARow++; inARow == n {
				return time.Now(), nil
			}
		} else {
			inARow = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func is2xx(st int) bool { return st >= 200 && st < 300 }

// runToDeadPort is the negative control of runFlips' measurement. Its premise must hold on
// every correct implementation, whatever its timing: Traefik coalesces changes made within ~2 s
// and applied none of the earlier control's short-lived dead versions, while the reference
// applies each in ~20 ms. So here the bad version is the route's final, steady state, and the
// control judges only once the implementation is seen serving it:
//
//  1. route version 0 (prop:80) is served: the driver converges on it and the probe sees 2xx;
//  2. under the same steady load as runFlips, the route changes once, for good, to prop-dead
//     (the same Pods on a port nothing listens on). Every correct implementation must then
//     answer that route with an error (a 5xx for the refused connection, or 500 if it rejects
//     the backend), never a 2xx: only one backend is left and it cannot answer;
//  3. the probe, independent of the code under test, sees ConvergeInARow errors in a row: the
//     implementation applied the change, however long it took (within ConvergeTimeout);
//  4. the load runs on at least 1 s more, and until it has recorded a failure after the
//     probe's evidence or ConvergeTimeout passes (a multi-replica data plane may serve the
//     load's kept-alive connections from a replica that applies the change later);
//  5. tally counts the failures: zero means gatecheck's measurement is blind, whatever the
//     implementation, because the implementation was seen failing requests meanwhile.
//
// If step 1 or 3 never happens, the premise is not met and the spec says so in those words:
// the control did not judge gatecheck (an implementation that never applies a route change
// within ConvergeTimeout is not correct either).
func runToDeadPort(ctx context.Context, route string) flipOutcome {
	GinkgoHelper()
	objs := env.Render(fixtures.Files, "change.yaml", flipData(route, 0, "prop", 80))
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "propagation")
	d := flipDriver(route)
	_, err := gwtest.ConvergeOn(ctx, d, "prop|0")
	Expect(err).NotTo(HaveOccurred())
	p := newProbe(url("/" + route))
	_, err = p.waitFor(ctx, gwtest.ConvergeInARow, gwtest.ConvergeTimeout, is2xx)
	Expect(err).NotTo(HaveOccurred(), "premise not met: the driver converged on route version 0 but a plain HTTP client never got %d 2xx in a row from %s", gwtest.ConvergeInARow, p.url)
	o, err := deadPortControl(ctx, d, p, func(ctx context.Context) error {
		return env.Update(ctx, env.Render(fixtures.Files, "change.yaml", flipData(route, 1, "prop-dead", 80)))
	}, gwtest.ConvergeTimeout)
	Expect(err).NotTo(HaveOccurred())
	return o
}

// errPremise marks a control whose premise did not hold: it did not judge gatecheck.
var errPremise = errors.New("premise not met")

// deadPortControl is steps 2-5 of runToDeadPort, on a route that serves version 0 and that d
// and p aim at: change makes the dead port its final version; timeout bounds each wait.
func deadPortControl(ctx context.Context, d *traffic.Driver, p *probe, change func(context.Context) error, timeout time.Duration) (flipOutcome, error) {
	l := startLoad(ctx, d)
	time.Sleep(500 * time.Millisecond)
	changed := time.Now()
	if err := change(ctx); err != nil {
		_, _, _ = l.finish()
		return flipOutcome{}, fmt.Errorf("change the route to prop-dead: %w", err)
	}
	applied, perr := p.waitFor(ctx, gwtest.ConvergeInARow, timeout, func(st int) bool { return !is2xx(st) })
	if perr == nil {
		enough, deadline := applied.Add(time.Second), applied.Add(timeout)
		for now := time.Now(); ctx.Err() == nil && now.Before(deadline) && (now.Before(enough) || !l.failedSince(applied)); now = time.Now() {
			time.Sleep(50 * time.Millisecond)
		}
	}
	sum, rec, err := l.finish()
	if err != nil {
		return flipOutcome{}, fmt.Errorf("load on %s: %w", p.url, err)
	}
	if perr != nil {
		return flipOutcome{}, fmt.Errorf("%w: the route was changed for good to prop-dead (a port nothing listens on) and a plain HTTP client never got %d errors in a row from %s (%v); the implementation did not apply the change, so the control cannot judge gatecheck",
			errPremise, gwtest.ConvergeInARow, p.url, perr)
	}

	var o flipOutcome
	o.summary = sum
	failed, failures, _ := tally(rec, changed)
	o.failed = failed
	var firstFailed time.Time
	for _, s := range rec {
		if s.at.After(changed) && !s.r.OK() {
			firstFailed = s.at
			break
		}
	}
	lag := "no failed request recorded"
	if !firstFailed.IsZero() {
		o.seen = []time.Duration{firstFailed.Sub(changed)}
		lag = fmt.Sprintf("change to first failed request %s", o.seen[0].Round(time.Millisecond))
	}
	o.message = fmt.Sprintf("%d requests at %.0f/s; the route changed for good to a dead port at +0s and a plain HTTP client saw it applied at +%s; %d failed (%s); %s",
		len(rec), d.Rate, applied.Sub(changed).Round(time.Millisecond), o.failed, strings.Join(failures, "; "), lag)
	o.decision = gwtest.DecisionOf(o.failed == 0)
	return o, nil
}

var _ = Describe("Route change under load", Label("propagation", "feature:propagation", "disruption"), func() {
	BeforeEach(func() { env.Require(features.SupportHTTPRouteResponseHeaderModification) })

	It("serves 100% 2xx while backend port and a response header flip every 200 ms, 20 times", func(ctx SpecContext) {
		o := runFlips(ctx, "prop-change", changes, func(i int) (string, int) { return "prop", []int{80, 8080}[i%2] })
		gwtest.ReportPropagation("route change under load: change to first response", o.decision, o.message,
			gwtest.PropagationSeries("change -> first response", o.seen, o.failed))
		gwtest.ReportLatency("route change under load: latency", o.decision, o.message,
			gwtest.LatencySeries("under changes", o.summary.Histogram(), int64(o.failed)))
		fmt.Fprintln(GinkgoWriter, o.message)
		Expect(o.failed).To(BeZero(), "every request must succeed while the route changes: %s", o.message)
	})

	It("fails when a change sends traffic to a port nothing listens on", Label("negative"), func(ctx SpecContext) {
		// The route's final, steady version points at prop-dead; see runToDeadPort for why this
		// must fail on every correct implementation, however fast it applies or coalesces.
		o := runToDeadPort(ctx, "prop-change-broken")
		gwtest.ReportPropagation("route change to a dead port (misconfigured on purpose: must fail)", o.decision, o.message,
			gwtest.PropagationSeries("change -> first failed request", o.seen, o.failed))
		Expect(o.failed).To(BeNumerically(">", 0), "the implementation was seen failing requests after the route changed to a port nothing listens on, and the check counted none: gatecheck's measurement is blind: %s", o.message)
		fmt.Fprintf(GinkgoWriter, "failed as it must: %s\n", o.message)
	})
})
