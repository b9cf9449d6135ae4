package sidecar

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

var _ = Describe("Native sidecar start order", Label("sidecar", "lifecycle:start"), func() {
	It("starts sidecars in declaration order, each after the previous is started, all before the main container", func(ctx SpecContext) {
		pod := createPod(ctx, renderPod("order.yaml", params("order", nil)))
		waitPod(ctx, pod.Name, "every container started", podStartTimeout, allStarted("sidecar-1", "sidecar-2", "main"))
		tl, _ := collectUntil(ctx, pod.Name, time.Minute, "main started")
		logTimeline("start order", tl)

		var v verdict
		v.check(tl.ExitsBeforeStart("init-once", "sidecar-1"))
		// Each sidecar takes 1.5 s from process start to "started" (its startupProbe passing
		// after that): a kubelet that did not wait for the probe would start the next early.
		v.check(tl.StartsBefore("sidecar-1", "sidecar-2"))
		v.check(tl.StartsBefore("sidecar-2", "main"))
		v.check(tl.StartsBefore("sidecar-1", "main"))
		v.check(tl.RunTogether("sidecar-1", "main"))
		v.check(tl.RunTogether("sidecar-2", "main"))
		for _, c := range []string{"sidecar-1", "sidecar-2", "main"} {
			v.check(tl.NotRestarted(c))
		}
		msg := fmt.Sprintf("init-once exit -> sidecar-1 start %s; sidecar-1 started -> sidecar-2 start %s; sidecar-2 started -> main start %s",
			gapMs(tl, "init-once", timeline.KindExiting, "sidecar-1", timeline.KindStarting),
			gapMs(tl, "sidecar-1", timeline.KindStarted, "sidecar-2", timeline.KindStarting),
			gapMs(tl, "sidecar-2", timeline.KindStarted, "main", timeline.KindStarting))
		v.record("start order: two sidecars with startupProbes", msg, tl.Model("native", containerNames(pod), roles(pod)))
	})
})
