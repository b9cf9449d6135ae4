package propagation

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/gatecheck/gatecheck/suites/internal/traffic"
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

// runFlips applies version(0) to route, converges, then under steady load applies
// version(1..n) every changeEvery, waits until the last version is served and counts every
// request that failed. version returns the Service and port of step i.
func runFlips(ctx context.Context, route string, n int, version func(i int) (svc string, port int)) flipOutcome {
	GinkgoHelper()
	data := func(i int) map[string]any {
		svc, port := version(i)
		return map[string]any{"Route": route, "Service": svc, "Port": port, "Flip": strconv.Itoa(i)}
	}
	objs := env.Render(fixtures.Files, "change.yaml", data(0))
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, "propagation")
	d := env.Driver(url("/" + route))
	d.Identity = flipIdentity
	d.Concurrency = 4
	d.Rate = max(50, 400*env.Config.Scale)
	_, err := gwtest.ConvergeOn(ctx, d, "prop|0")
	Expect(err).NotTo(HaveOccurred())

	var mu sync.Mutex
	var rec []stamped
	var stop atomic.Bool
	type runOut struct {
		sum traffic.Summary
		err error
	}
	done := make(chan runOut, 1)
	go func() {
		// Stopping through observe (not by cancelling ctx) lets requests in flight finish,
		// so none is cut short and miscounted as a failure.
		sum, err := d.Run(ctx, traffic.Limit{Duration: 5 * time.Minute}, func(r traffic.Result) bool {
			mu.Lock()
			rec = append(rec, stamped{time.Now(), r})
			mu.Unlock()
			return stop.Load()
		})
		done <- runOut{sum, err}
	}()
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
		mu.Lock()
		defer mu.Unlock()
		g.Expect(len(rec)).To(BeNumerically(">=", gwtest.ConvergeInARow))
		for _, s := range rec[len(rec)-gwtest.ConvergeInARow:] {
			g.Expect(s.r.Backend).To(Equal(final), "the last route version is not served yet")
		}
	}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).WithPolling(50 * time.Millisecond).Should(Succeed())
	time.Sleep(time.Second)
	stop.Store(true)
	out := <-done
	Expect(out.err).NotTo(HaveOccurred())

	mu.Lock()
	defer mu.Unlock()
	firstSeen := map[string]time.Time{}
	var o flipOutcome
	o.summary = out.sum
	var failures []string
	for _, s := range rec {
		if !s.r.OK() {
			o.failed++
			if len(failures) < 3 {
				failures = append(failures, fmt.Sprintf("status %d err %v at +%s", s.r.Status, s.r.Err, s.at.Sub(t0).Round(time.Millisecond)))
			}
			continue
		}
		if _, ok := firstSeen[s.r.Backend]; !ok {
			firstSeen[s.r.Backend] = s.at
		}
	}
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
		// Odd steps point the route at prop-dead (the same Pods, a closed port): requests in
		// those windows fail, and the check must count them.
		o := runFlips(ctx, "prop-change-broken", 6, func(i int) (string, int) { return []string{"prop", "prop-dead"}[i%2], 80 })
		gwtest.ReportPropagation("route change to a dead port (misconfigured on purpose: must fail)", o.decision, o.message,
			gwtest.PropagationSeries("change -> first response", o.seen, o.failed))
		Expect(o.failed).To(BeNumerically(">", 0), "flipping the route to a port nothing listens on must fail requests, and the check saw none: %s", o.message)
		fmt.Fprintf(GinkgoWriter, "failed as it must: %s\n", o.message)
	})
})
