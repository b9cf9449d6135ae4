package sidecar

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

var _ = Describe("Native sidecar startupProbe", Label("sidecar", "lifecycle:startup-probe"), func() {
	It("starts the main container only after the sidecar's startupProbe passes", func(ctx SpecContext) {
		const delay = 3 * time.Second
		pod := createPod(ctx, renderPod("startupprobe.yaml", params("startup-probe", map[string]any{"StartupDelay": delay.String()})))
		waitPod(ctx, pod.Name, "sidecar and main started", podStartTimeout, allStarted("sidecar", "main"))
		tl, _ := collectUntil(ctx, pod.Name, time.Minute, "main started")
		logTimeline("startupProbe gating", tl)

		var v verdict
		// The sidecar's process is up (and its /startup endpoint answering 503) for 3 s before it
		// reports "started"; main must not start in that window.
		v.check(tl.StartsBefore("sidecar", "main"))
		if gap, ok := tl.Gap("sidecar", timeline.KindStarting, "main", timeline.KindStarting); ok && gap < delay {
			v.check(fmt.Errorf("main started %d ms after the sidecar's process; want at least the sidecar's %s startup delay", gap.Milliseconds(), delay))
		}
		msg := fmt.Sprintf("sidecar process start -> main start %s (startup delay %s); sidecar started -> main start %s",
			gapMs(tl, "sidecar", timeline.KindStarting, "main", timeline.KindStarting), delay,
			gapMs(tl, "sidecar", timeline.KindStarted, "main", timeline.KindStarting))
		v.record("startupProbe gates the main container", msg, tl.Model("native", containerNames(pod), roles(pod)))
	})

	It("keeps the main container waiting while the sidecar's startupProbe fails", func(ctx SpecContext) {
		const observe = 8 * time.Second
		pod := createPod(ctx, renderPod("startupprobe.yaml", params("startup-probe-failing", map[string]any{"StartupDelay": "1h"})))
		waitPod(ctx, pod.Name, "sidecar running", podStartTimeout, func(p *corev1.Pod) (bool, string) {
			st, ok := containerStatus(p, "sidecar")
			return ok && st.State.Running != nil, "sidecar " + stateString(st.State)
		})
		began := time.Now()
		fmt.Fprintf(GinkgoWriter, "watching main for %s while the sidecar's startupProbe fails\n", observe)
		Consistently(func(g Gomega, ctx context.Context) {
			p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			st, _ := containerStatus(p, "main")
			g.Expect(st.State.Running).To(BeNil(), "main is running although the sidecar's startupProbe has not passed:\n%s", describe(p))
			sc, _ := containerStatus(p, "sidecar")
			g.Expect(sc.Started != nil && *sc.Started).To(BeFalse(), "the kubelet reports the sidecar started although its /startup answers 503:\n%s", describe(p))
		}).WithContext(ctx).WithTimeout(observe).WithPolling(500 * time.Millisecond).Should(Succeed())

		tl, _ := collect(ctx, pod.Name)
		logTimeline("failing startupProbe", tl)
		var v verdict
		v.check(tl.DoesntStart("main"))
		if _, ok := tl.Find("sidecar", timeline.KindStarting); !ok {
			v.check(fmt.Errorf("the sidecar wrote no %q event; want its process running while the probe fails", timeline.KindStarting))
		}
		v.record("failing startupProbe holds the main container", fmt.Sprintf("main not started during %s of failing probe", time.Since(began).Round(time.Second)),
			tl.Model("native", containerNames(pod), roles(pod)))
	})
})
