package propagation

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	fixtures "github.com/gatecheck/gatecheck/fixtures/propagation"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
)

// pollEvery is gateway-api-bench's probe interval.
const pollEvery = 5 * time.Millisecond

// firstServed polls d every pollEvery until gwtest.ConvergeInARow responses in a row are 200s
// from prop, and returns when the first of them was sent. 404 (no route yet) is expected
// before; any other status or a transport error is counted in errs; a 404 after a 200 is a
// flap.
func firstServed(ctx context.Context, d *traffic.Driver, start time.Time) (took time.Duration, errs, flaps int, samples []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, gwtest.ConvergeTimeout)
	defer cancel()
	inRow := 0
	var runStart time.Time
	for seq := 1; ; seq++ {
		sent := time.Now()
		r := d.Do(ctx, seq)
		switch {
		case r.Status == http.StatusOK && r.Backend == "prop":
			if inRow == 0 {
				runStart = sent
			}
			if inRow++; inRow >= gwtest.ConvergeInARow {
				return runStart.Sub(start), errs, flaps, samples, nil
			}
		case r.Status == http.StatusNotFound:
			if inRow > 0 {
				flaps++
			}
			inRow = 0
		default:
			if ctx.Err() != nil {
				return 0, errs, flaps, samples, fmt.Errorf("no %d consecutive 200s within %s: %w", gwtest.ConvergeInARow, gwtest.ConvergeTimeout, ctx.Err())
			}
			errs++
			if len(samples) < 3 {
				samples = append(samples, fmt.Sprintf("status %d backend %q err %v", r.Status, r.Backend, r.Err))
			}
			inRow = 0
		}
		time.Sleep(time.Until(sent.Add(pollEvery)))
	}
}

var _ = Describe("Route propagation", Label("propagation", "feature:propagation"), func() {
	It("serves each new HTTPRoute: time from create to 3 consecutive 200s, over many routes", func(ctx SpecContext) {
		n := env.Requests(20, 5)
		// took is create-to-serving; created is the create call alone (the API server's part,
		// which no implementation can be faster than).
		var took, created []time.Duration
		errs, flaps := 0, 0
		var samples []string
		for i := range n {
			name := fmt.Sprintf("prop-create-%d", i)
			objs := env.Render(fixtures.Files, "create.yaml", map[string]any{"Route": name})
			d := env.Driver(url("/" + name))
			d.Timeout = 2 * time.Second
			start := time.Now()
			env.Apply(ctx, objs)
			created = append(created, time.Since(start))
			t, e, f, s, err := firstServed(ctx, d, start)
			Expect(err).NotTo(HaveOccurred(), "HTTPRoute %s (%d of %d) never served", name, i+1, n)
			took = append(took, t)
			errs, flaps, samples = errs+e, flaps+f, append(samples, s...)
		}
		// Nearest rank, as the report's tables compute it, so message and table agree.
		quantile := func(ds []time.Duration, p float64) time.Duration {
			sorted := slices.Clone(ds)
			slices.Sort(sorted)
			i := int(math.Ceil(p*float64(len(sorted)))) - 1
			return sorted[max(0, min(len(sorted)-1, i))].Round(100 * time.Microsecond)
		}
		msg := fmt.Sprintf("%d routes created one at a time, polled every %s: create-to-serving p50 %s, p90 %s, max %s (of which the API server's create call: p50 %s, p90 %s); %d responses other than 404-then-200, %d flaps back to 404",
			n, pollEvery, quantile(took, 0.5), quantile(took, 0.9), quantile(took, 1), quantile(created, 0.5), quantile(created, 0.9), errs, flaps)
		if len(samples) > 0 {
			msg += fmt.Sprintf(" (first: %v)", samples[0])
		}
		pass := errs == 0 && flaps == 0
		gwtest.ReportPropagation("HTTPRoute create to 3 consecutive 200s", gwtest.DecisionOf(pass), msg,
			gwtest.PropagationSeries("create -> serving", took, errs),
			gwtest.PropagationSeries("create call (API server)", created, 0))
		fmt.Fprintln(GinkgoWriter, msg)
		Expect(errs).To(BeZero(), "while new routes propagated: %s", msg)
		Expect(flaps).To(BeZero(), "a new route went back to 404 after serving: %s", msg)
	})
})
