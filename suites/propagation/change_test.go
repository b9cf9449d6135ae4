package propagation_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/propagation"
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

var _ = Describe("Route change under load", Label("propagation", "feature:propagation", "disruption"), func() {
	It("serves 100% 2xx while backend port and a response header flip every 200 ms, 20 times", func(ctx SpecContext) {
		env.Require(features.SupportHTTPRouteResponseHeaderModification)
		version := func(i int) map[string]any {
			return map[string]any{"Port": []int{80, 8080}[i%2], "Flip": strconv.Itoa(i)}
		}
		objs := env.Render(fixtures.Files, "change.yaml", version(0))
		env.Apply(ctx, objs)
		env.WaitReady(ctx, objs, "propagation")
		d := env.Driver(url("/prop-change"))
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
			sum, err := d.Run(ctx, traffic.Limit{Duration: 5 * time.Minute}, func(r traffic.Result) bool {
				mu.Lock()
				rec = append(rec, stamped{time.Now(), r})
				mu.Unlock()
				return stop.Load()
			})
			done <- runOut{sum, err}
		}()
		time.Sleep(500 * time.Millisecond)

		applied := make([]time.Time, changes+1)
		t0 := time.Now()
		for i := 1; i <= changes; i++ {
			time.Sleep(time.Until(t0.Add(time.Duration(i-1) * changeEvery)))
			applied[i] = time.Now()
			Expect(env.Update(ctx, env.Render(fixtures.Files, "change.yaml", version(i)))).To(Succeed(), "change %d", i)
		}
		final := fmt.Sprintf("prop|%d", changes)
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
		sum := out.sum

		mu.Lock()
		defer mu.Unlock()
		firstSeen := map[string]time.Time{}
		failed := 0
		var failures []string
		for _, s := range rec {
			if !s.r.OK() {
				failed++
				if len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("status %d err %v at +%s", s.r.Status, s.r.Err, s.at.Sub(t0).Round(time.Millisecond)))
				}
				continue
			}
			if _, ok := firstSeen[s.r.Backend]; !ok {
				firstSeen[s.r.Backend] = s.at
			}
		}
		var seen []time.Duration
		for i := 1; i <= changes; i++ {
			if at, ok := firstSeen[fmt.Sprintf("prop|%d", i)]; ok {
				seen = append(seen, at.Sub(applied[i]))
			}
		}
		msg := fmt.Sprintf("%d requests at %.0f/s while %d changes were applied %s apart: %d failed (%s); %d of %d route versions were observed before the next replaced them",
			len(rec), d.Rate, changes, changeEvery, failed, strings.Join(failures, "; "), len(seen), changes)
		gwtest.ReportPropagation("route change under load: change to first response", gwtest.DecisionOf(failed == 0), msg,
			gwtest.PropagationSeries("change -> first response", seen, failed))
		gwtest.ReportLatency("route change under load: latency", gwtest.DecisionOf(failed == 0), msg,
			gwtest.LatencySeries("under changes", sum.Histogram(), int64(failed)))
		fmt.Fprintln(GinkgoWriter, msg)
		Expect(failed).To(BeZero(), "every request must succeed while the route changes: %s", msg)
	})
})
