package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

const meshProxyPort = 15001

// meshVariants are the Pod shapes measured side by side (see meshproxy.yaml); only native is
// judged, the legacy ones are measurements.
var meshVariants = []string{"native", "legacy-first", "legacy-last"}

// meshOutcome is what one app's first outbound request got.
type meshOutcome struct {
	pod     string
	variant string
	ok      bool
	detail  string
	latency float64 // ms, as measured by the app
	tl      *timeline.Timeline
}

// proxyEvents turns the proxy's log into a "starting" event at its first line: the reference
// proxy writes no lifecycle events, and the runtime's log timestamps are the best clock we have
// for it (they lag the process start by the proxy's own startup work).
func proxyEvents(ctx context.Context, pod string) []timeline.Event {
	GinkgoHelper()
	raw, err := env.cs.CoreV1().Pods(env.namespace).GetLogs(pod, &corev1.PodLogOptions{Container: "proxy", Timestamps: true, LimitBytes: ptrTo(int64(64 * 1024))}).DoRaw(ctx)
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "no proxy log for %s: %v\n", pod, err)
		return nil
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	ts, _, ok := strings.Cut(first, " ")
	if !ok {
		return nil
	}
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil
	}
	return []timeline.Event{{Time: tm, Container: "proxy", Kind: timeline.KindStarting, Detail: "first-log-line"}}
}

func outcomeOf(tl *timeline.Timeline) (ok bool, detail string, latency float64, found bool) {
	for _, e := range tl.Events {
		if e.Container != "app" || (e.Kind != lifecycle.EventOutboundOK && e.Kind != lifecycle.EventOutboundErr) {
			continue
		}
		for _, f := range strings.Fields(e.Detail) {
			if v, ok := strings.CutPrefix(f, "latency_ms="); ok {
				latency, _ = strconv.ParseFloat(v, 64)
			}
		}
		return e.Kind == lifecycle.EventOutboundOK, e.Detail, latency, true
	}
	return false, "", 0, false
}

var _ = Describe("Mesh proxy readiness", Label("sidecar", "mesh", "lifecycle:mesh-proxy"), Serial, func() {
	It("serves the app's first outbound request every time with the proxy as a native sidecar (legacy pattern measured alongside)", func(ctx SpecContext) {
		n := *flagMeshPods
		Expect(n).To(BeNumerically(">", 0), "-sidecar.mesh-pods")
		nodes, err := env.cs.CoreV1().Nodes().Get(ctx, env.node, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(nodeHasImage(*nodes, *flagProxyImage)).To(BeTrue(), "node %s does not have the reference proxy image %s; build and load it (-sidecar.proxy-image to use another)", env.node, *flagProxyImage)

		target := createPod(ctx, renderPod("meshproxy.yaml", params("mesh-target", map[string]any{"Part": "target"})))
		target = waitPod(ctx, target.Name, "Ready with an IP", podStartTimeout, func(p *corev1.Pod) (bool, string) {
			return podReady(p) && p.Status.PodIP != "", "phase " + string(p.Status.Phase)
		})

		// No cluster DNS here: the proxy routes to the target's Pod IP.
		snap := ir.Snapshot{
			Schema: ir.SchemaVersion, Version: 1,
			Gateway: ir.NamespacedName{Namespace: env.namespace, Name: "mesh-sidecar"},
			Listeners: []ir.Listener{{
				Name: "outbound", Port: meshProxyPort, Protocol: ir.ProtocolHTTP,
				HTTPRoutes: []ir.HTTPRoute{{
					RouteMeta: ir.RouteMeta{Namespace: env.namespace, Name: "to-target", CreationTimestamp: time.Now().UTC().Truncate(time.Second)},
					Rules: []ir.HTTPRule{{Index: 0, Backends: []ir.Backend{{
						Name: env.namespace + "/mesh-target:8080", Weight: 1,
						Endpoints: []ir.Endpoint{{Address: target.Status.PodIP, Port: 8080}},
					}}}},
				}},
			}},
		}
		Expect(snap.Validate()).To(Succeed())
		body, err := json.MarshalIndent(snap, "", "  ")
		Expect(err).NotTo(HaveOccurred())
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mesh-proxy-config", Namespace: env.namespace}, Data: map[string]string{"snapshot.json": string(body)}}
		DeferCleanup(func(ctx context.Context) error {
			err := env.cs.CoreV1().ConfigMaps(env.namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		_, err = env.cs.CoreV1().ConfigMaps(env.namespace).Create(ctx, cm, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		// Interleave the variants so all see the same node load.
		var names []string
		variantOf := map[string]string{}
		for i := range n {
			for _, variant := range meshVariants {
				name := fmt.Sprintf("mesh-%s-%d", variant, i)
				createPod(ctx, renderPod("meshproxy.yaml", params(name, map[string]any{
					"Part": "app", "Variant": variant, "ConfigMap": cm.Name, "ProxyPort": meshProxyPort,
				})))
				names = append(names, name)
				variantOf[name] = variant
			}
		}

		outcomes := map[string]*meshOutcome{}
		Expect(waitFor(ctx, fmt.Sprintf("first outbound request of %d apps", len(names)), 4*time.Minute, func(ctx context.Context) (bool, string, error) {
			for _, name := range names {
				if outcomes[name] != nil {
					continue
				}
				p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, "", err
				}
				if r := stuck(p); r != "" {
					return false, "", fmt.Errorf("%s", r)
				}
				st, _ := containerStatus(p, "app")
				if st.State.Running == nil && st.State.Terminated == nil {
					continue
				}
				evs := readLog(ctx, p, "app", false)
				tl := timeline.New(time.Time{}, timeline.DefaultTolerance, evs, proxyEvents(ctx, name))
				if ok, detail, lat, found := outcomeOf(tl); found {
					outcomes[name] = &meshOutcome{pod: name, variant: variantOf[name], ok: ok, detail: detail, latency: lat, tl: tl}
				}
			}
			return len(outcomes) == len(names), fmt.Sprintf("%d/%d apps reported", len(outcomes), len(names)), nil
		})).To(Succeed())

		var variants []model.SidecarTimeline
		fails := map[string]int{}
		lat := map[string][]float64{}
		var nativeFailures []string
		for _, name := range names {
			o := outcomes[name]
			logTimeline(name, o.tl)
			if !o.ok {
				fails[o.variant]++
				if o.variant == "native" {
					nativeFailures = append(nativeFailures, name+": "+o.detail)
				}
			} else {
				lat[o.variant] = append(lat[o.variant], o.latency)
			}
			role := "main" // the legacy proxy is a regular container
			if o.variant == "native" {
				role = "sidecar"
			}
			variants = append(variants, o.tl.Model(name, []string{"proxy", "app"}, map[string]string{"proxy": role, "app": "main"}))
		}
		var parts []string
		for _, v := range meshVariants {
			parts = append(parts, fmt.Sprintf("%s: %d/%d first requests failed (%.0f%%), median ok latency %s",
				v, fails[v], n, 100*float64(fails[v])/float64(n), median(lat[v])))
		}
		msg := strings.Join(parts, "; ")
		fmt.Fprintln(GinkgoWriter, msg)
		d := model.DecisionPass
		if fails["native"] > 0 {
			d = model.DecisionFail
		}
		AddReportEntry(model.Entry("mesh proxy readiness: native sidecar vs legacy patterns", &model.SidecarTimelines{Variants: variants, Decision: d, Message: msg}))
		// The legacy pattern is a measurement only; the native one must never lose a request.
		Expect(nativeFailures).To(BeEmpty(), "with the proxy as a native sidecar every app's first request must succeed; %s", msg)
	})
})

func median(v []float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf("%.1f ms", s[len(s)/2])
}
