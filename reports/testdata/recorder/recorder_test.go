// Package recorder is a tiny Ginkgo suite that produces the recorded Ginkgo JSON reports under
// reports/testdata. It attaches every measurement kind through model.Entry exactly as the real
// suites do, and includes a failing, a skipped and a pending spec. Regenerate with
// reports/testdata/record.sh.
package recorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/reports/model"
)

var suite = os.Getenv("RECORDER_SUITE")

func TestRecorder(t *testing.T) {
	RegisterFailHandler(Fail)
	if suite == "" {
		t.Skip("RECORDER_SUITE is not set; run reports/testdata/record.sh")
	}
	RunSpecs(t, "gatecheck "+suite)
}

var _ = BeforeSuite(func() {
	AddReportEntry(model.RunEntry(model.Run{
		GatecheckVersion:  "v0.1.0-recorded",
		Implementation:    "envoy-gateway v1.8.0",
		GatewayClass:      "gatecheck-eg",
		ClusterProvider:   "kind",
		KubernetesVersion: "v1.36.1",
		GatewayAPIVersion: "v1.6.3",
		GatewayAPIChannel: "standard",
	}))
})

// wilson is the Wilson score interval of k successes in n at confidence 1-alpha (alpha 0.01).
func wilson(k, n int) (lo, hi float64) {
	const z = 2.5758293035489
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	c := (p + z*z/(2*nf)) / den
	h := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return c - h, c + h
}

func verdict(n int, names []string, weights []int32, counts []int, tol float64) *model.WeightVerdict {
	var sum int32
	for _, w := range weights {
		sum += w
	}
	v := &model.WeightVerdict{N: n, Tolerance: tol, Alpha: 0.01, Power: 0.95, Method: "wilson+tost", Decision: model.DecisionPass}
	for i := range names {
		lo, hi := wilson(counts[i], n)
		d := float64(weights[i]) / float64(sum)
		v.Backends = append(v.Backends, model.WeightShare{
			Backend: names[i], Weight: weights[i], DeclaredShare: d,
			Count: counts[i], Share: float64(counts[i]) / float64(n), Lo: lo, Hi: hi,
		})
		if lo < d-tol || hi > d+tol {
			v.Decision = model.DecisionFail
			v.Message = fmt.Sprintf("%s share interval [%.3f, %.3f] leaves %.2f±%.2f", names[i], lo, hi, d, tol)
		}
	}
	if v.Decision == model.DecisionPass {
		v.PValue = 0.0004
		v.Message = fmt.Sprintf("every share interval lies within ±%.0f points of its declared share", tol*100)
	} else {
		v.PValue = 0.41
	}
	return v
}

func histogram(label string, rng *rand.Rand, n int, medianMs, sigma float64) model.LatencyHistogram {
	samples := make([]float64, n)
	for i := range samples {
		samples[i] = medianMs * math.Exp(sigma*rng.NormFloat64())
	}
	slices.Sort(samples)
	q := func(p float64) float64 { return samples[int(p*float64(n-1))] }
	h := model.LatencyHistogram{Label: label, Count: int64(n), MinMs: samples[0], MaxMs: samples[n-1],
		P50Ms: q(0.5), P90Ms: q(0.9), P99Ms: q(0.99), P999Ms: q(0.999)}
	var sum float64
	for _, s := range samples {
		sum += s
	}
	h.MeanMs = sum / float64(n)
	lower := 0.25
	for i := 0; lower < samples[n-1]; i++ {
		upper := lower * math.Pow(2, 0.5)
		var c int64
		for _, s := range samples {
			if s >= lower && s < upper {
				c++
			}
		}
		h.Buckets = append(h.Buckets, model.Bucket{LowerMs: lower, UpperMs: upper, Count: c})
		lower = upper
	}
	return h
}

func init() {
	if suite != "traffic" {
		return
	}
	describeTraffic()
}

func describeTraffic() {
	Describe("Weighted split", Label("traffic", "feature:weight"), func() {
		It("splits 80/20 within tolerance", func() {
			v := verdict(6000, []string{"infra-backend-v1", "infra-backend-v2"}, []int32{80, 20}, []int{4811, 1189}, 0.02)
			AddReportEntry(model.Entry("HTTPRoute weights 80/20", v))
			Expect(v.Decision).To(Equal(model.DecisionPass), v.Message)
		})
		It("splits 90/10 at the declared weights", func() {
			GinkgoWriter.Printf("sent 6000 requests to http://172.18.0.2/weighted (10 workers)\n")
			GinkgoWriter.Printf("backend infra-backend-v1: 5196 responses\nbackend infra-backend-v2: 804 responses\n")
			v := verdict(6000, []string{"infra-backend-v1", "infra-backend-v2"}, []int32{90, 10}, []int{5196, 804}, 0.02)
			AddReportEntry(model.Entry("HTTPRoute weights 90/10", v))
			Expect(v.Decision).To(Equal(model.DecisionPass), v.Message)
		})
		It("splits three ways 50/30/20", func() {
			v := verdict(9000, []string{"v1", "v2", "v3"}, []int32{5, 3, 2}, []int{4468, 2730, 1802}, 0.02)
			AddReportEntry(model.Entry("HTTPRoute weights 5/3/2", v))
			Expect(v.Decision).To(Equal(model.DecisionPass), v.Message)
		})
	})

	Describe("Mirror isolation", Label("traffic", "feature:mirror"), func() {
		It("keeps primary latency when the mirror is slow", func() {
			rng := rand.New(rand.NewPCG(8, 1))
			AddReportEntry(model.Entry("mirror isolation: baseline vs with slow mirror", &model.LatencyHistograms{
				Series: []model.LatencyHistogram{
					histogram("baseline", rng, 5000, 2.1, 0.35),
					histogram("with slow mirror (2 s)", rng, 5000, 2.3, 0.4),
				},
				Decision: model.DecisionPass,
				Message:  "p99 grew by less than the 5 ms allowance",
			}))
		})
	})

	Describe("Route propagation", Label("propagation"), func() {
		It("propagates new routes and backend changes", func() {
			rng := rand.New(rand.NewPCG(8, 2))
			create := make([]float64, 200)
			for i := range create {
				create[i] = math.Round(400+200*rng.ExpFloat64()+30*rng.NormFloat64()) + 0.5
			}
			update := make([]float64, 200)
			for i := range update {
				update[i] = math.Round(250+120*rng.ExpFloat64()) + 0.25
			}
			AddReportEntry(model.Entry("route propagation", &model.Propagation{
				Series: []model.PropagationSeries{
					{Label: "create route", SamplesMs: create},
					{Label: "change backend", SamplesMs: update, Errors: 2},
				},
				Decision: model.DecisionPass,
				Message:  "p99 under the 5 s budget",
			}))
		})
		It("propagates response header filter changes", Label("feature:header-modifier"), func() {
			Skip("GatewayClass gatecheck-eg does not list HTTPRouteResponseHeaderModification in status.supportedFeatures")
		})
		PIt("propagates 3,000 routes without errors")
	})

}

func init() {
	if suite == "sidecars" {
		describeSidecars()
	}
}

func describeSidecars() {
	Describe("Sidecar lifecycle", Label("sidecar"), func() {
		It("terminates the proxy sidecar after the main container", func() {
			ev := func(k model.EventKind, ms float64) model.ContainerEvent {
				return model.ContainerEvent{Kind: k, TimeMs: ms}
			}
			AddReportEntry(model.Entry("pod termination: legacy vs native sidecar", &model.SidecarTimelines{
				Variants: []model.SidecarTimeline{
					{Variant: "legacy", Containers: []model.ContainerTimeline{
						{Name: "proxy", Role: "sidecar", Events: []model.ContainerEvent{ev("start", 410), ev("ready", 1380), ev("sigterm", 6020), ev("exit", 6110)}},
						{Name: "app", Role: "main", Events: []model.ContainerEvent{ev("start", 415), ev("ready", 900), ev("sigterm", 6020), {Kind: "exit", TimeMs: 8400, Detail: "exit code 0 after draining"}}},
					}},
					{Variant: "native", Containers: []model.ContainerTimeline{
						{Name: "proxy", Role: "sidecar", Events: []model.ContainerEvent{ev("start", 380), ev("ready", 1320), ev("sigterm", 8460), ev("exit", 8530)}},
						{Name: "app", Role: "main", Events: []model.ContainerEvent{ev("start", 1340), ev("ready", 1800), ev("sigterm", 6010), {Kind: "exit", TimeMs: 8420, Detail: "exit code 0 after draining"}}},
					}},
				},
				Decision: model.DecisionPass,
				Message:  "native: proxy outlives app by 110 ms; legacy: proxy exits 2290 ms before app",
			}))
			AddReportEntry("pod", "gatecheck-sidecar/termination-7f9c")
		})
	})
}
