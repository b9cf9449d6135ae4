package canary

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	fixtures "github.com/gatecheck/gatecheck/fixtures/canary"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
)

// Convergence detectors. Under 90/10 a window of 100 responses holds 35 or more v2 with
// probability about 1e-11, and 200 v2 in a row under 50/50 with probability 6e-61, so a
// detector firing means the new weights are in effect, not luck.
const (
	shiftWindow     = 100
	shiftWindowMinV = 35
	shiftRun        = 200
	// shiftTimeout bounds each phase's convergence.
	shiftTimeout = 45 * time.Second
	// shiftHold keeps the load on after the last phase, to catch late errors or a relapse.
	shiftHold = 3 * time.Second
)

type stamped struct {
	at time.Time
	r  traffic.Result
}

// recorder keeps every completed request with its completion time.
// Stopping through it (not by cancelling the driver's context) lets requests in flight
// finish, so none is cut short and miscounted as a failure.
type recorder struct {
	mu   sync.Mutex
	all  []stamped
	stop atomic.Bool
}

func (rc *recorder) add(r traffic.Result) bool {
	rc.mu.Lock()
	rc.all = append(rc.all, stamped{time.Now(), r})
	rc.mu.Unlock()
	return rc.stop.Load()
}

func (rc *recorder) since(t time.Time) []stamped {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []stamped
	for _, s := range rc.all {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

// windowAt returns the completion time of the last response in the first window of
// shiftWindow identified responses with at least shiftWindowMinV from v2.
func windowAt(rs []stamped) (time.Time, bool) {
	var ok []stamped
	for _, s := range rs {
		if s.r.OK() {
			ok = append(ok, s)
		}
	}
	v2 := 0
	for i, s := range ok {
		if s.r.Backend == "v2" {
			v2++
		}
		if i >= shiftWindow && ok[i-shiftWindow].r.Backend == "v2" {
			v2--
		}
		if i >= shiftWindow-1 && v2 >= shiftWindowMinV {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// runAt waits for a run of shiftRun identified v2 responses in a row (v1 is no longer
// served) and returns the completion time of the last v1 response before it: the last
// moment the old weights were seen. With no v1 response at all it returns the time of the
// first response.
func runAt(rs []stamped) (time.Time, bool) {
	n := 0
	var lastOld time.Time
	for _, s := range rs {
		if !s.r.OK() {
			continue
		}
		if lastOld.IsZero() {
			lastOld = s.at
		}
		if s.r.Backend != "v2" {
			n, lastOld = 0, s.at
			continue
		}
		if n++; n >= shiftRun {
			return lastOld, true
		}
	}
	return time.Time{}, false
}

var _ = Describe("Weight shift under steady load", Label("canary", "feature:weight", "shift"), func() {
	It("moves 90/10 -> 50/50 -> 0/100 without a single non-2xx", func(ctx SpecContext) {
		route := func(v1, v2 int) map[string]any { return map[string]any{"V1": v1, "V2": v2} }
		applyRoute(ctx, "shift.yaml", route(90, 10))
		d := env.Driver(url("/shift"))
		d.Concurrency = 4
		d.Rate = max(50, 200*env.Config.Scale)
		_, err := gwtest.ConvergeOn(ctx, d, "v1", "v2")
		Expect(err).NotTo(HaveOccurred())

		rec := &recorder{}
		type runOut struct {
			sum traffic.Summary
			err error
		}
		done := make(chan runOut, 1)
		go func() {
			defer GinkgoRecover()
			sum, err := d.Run(ctx, traffic.Limit{Duration: 5 * time.Minute}, rec.add)
			done <- runOut{sum, err}
		}()
		time.Sleep(time.Second) // a baseline under 90/10 before the first change

		phases := []struct {
			label  string
			v1, v2 int
			detect func([]stamped) (time.Time, bool)
			how    string
		}{
			{"90/10 -> 50/50", 50, 50, windowAt, fmt.Sprintf("a window of %d responses first holds >= %d from v2", shiftWindow, shiftWindowMinV)},
			{"50/50 -> 0/100", 0, 100, runAt, fmt.Sprintf("the last v1 response before %d v2 in a row", shiftRun)},
		}
		var series []model.PropagationSeries
		var lastPhaseStart time.Time
		for _, ph := range phases {
			objs := env.Render(fixtures.Files, "shift.yaml", route(ph.v1, ph.v2))
			start := time.Now()
			Expect(env.Update(ctx, objs)).To(Succeed(), "change weights %s", ph.label)
			var at time.Time
			Eventually(func(g Gomega) {
				t, ok := ph.detect(rec.since(start))
				g.Expect(ok).To(BeTrue(), "the data plane still serves the old weights %s after the change", ph.label)
				at = t
			}).WithContext(ctx).WithTimeout(shiftTimeout).WithPolling(100 * time.Millisecond).Should(Succeed())
			took := at.Sub(start)
			fmt.Fprintf(GinkgoWriter, "%s converged %s after the API write (%s)\n", ph.label, took.Round(time.Millisecond), ph.how)
			series = append(series, gwtest.PropagationSeries(ph.label, []time.Duration{took}, 0))
			lastPhaseStart = at
		}
		time.Sleep(shiftHold)
		rec.stop.Store(true)
		out := <-done
		Expect(out.err).NotTo(HaveOccurred())

		// v1 must not come back after the last v1 response that preceded the all-v2 run.
		relapse := 0
		for _, s := range rec.since(lastPhaseStart) {
			if s.r.OK() && s.r.Backend == "v1" && s.at.After(lastPhaseStart) {
				relapse++
			}
		}
		sum := out.sum
		failures := sum.Failures()
		var conv []string
		for i, s := range series {
			conv = append(conv, fmt.Sprintf("%s in %.0f ms (when %s)", s.Label, s.SamplesMs[0], phases[i].how))
		}
		msg := fmt.Sprintf("converged %s; %d requests at %.0f/s over %s: %d non-2xx or failed (%s); %d responses from v1 after 0/100 took effect",
			strings.Join(conv, ", "), sum.Completed, d.Rate, sum.Elapsed.Round(time.Second), failures, sum.FailureText(), relapse)
		for i := range series {
			series[i].Errors = failures
		}
		pass := failures == 0 && relapse == 0
		gwtest.ReportPropagation("weight shift under load: time to converge", gwtest.DecisionOf(pass), msg, series...)
		gwtest.ReportLatency("weight shift under load: latency", gwtest.DecisionOf(pass), msg,
			gwtest.LatencySeries("shift", sum.Histogram(), int64(failures)))
		Expect(failures).To(BeZero(), "every request during a weight shift must succeed: %s", msg)
		Expect(relapse).To(BeZero(), "%s", msg)
	})
})
