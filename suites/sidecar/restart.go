package sidecar

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

var _ = Describe("Native sidecar crash", Label("sidecar", "lifecycle:restart"), func() {
	DescribeTable("restarts a crashing sidecar without restarting the main container",
		func(ctx SpecContext, policy corev1.RestartPolicy) {
			name := "restart-" + strings.ToLower(string(policy))
			pod := createPod(ctx, renderPod("restart.yaml", params(name, map[string]any{"RestartPolicy": string(policy), "CrashAfter": "2s"})))
			// CrashLoopBackOff grows from 10 s; one restart is what the spec needs.
			waitPod(ctx, pod.Name, "sidecar restarted and running again", 3*time.Minute, func(p *corev1.Pod) (bool, string) {
				st, _ := containerStatus(p, "sidecar")
				return st.RestartCount >= 1 && st.State.Running != nil, fmt.Sprintf("sidecar restarts=%d %s", st.RestartCount, stateString(st.State))
			})
			tl, p := collectUntil(ctx, pod.Name, time.Minute, "main started")
			// The kubelet reports the restarted sidecar running before its first log line is
			// readable (seen on a loaded node): read until the restart is in the log too, or 20 s
			// have passed, and judge what was read.
			_ = waitFor(ctx, "the restarted sidecar's start in its log", 20*time.Second, func(ctx context.Context) (bool, string, error) {
				tl, p = collect(ctx, pod.Name)
				return tl.Restarts("sidecar") >= 1, fmt.Sprintf("sidecar started %d time(s)", tl.Restarts("sidecar")+1), nil
			})
			logTimeline("crashing sidecar", tl)

			var v verdict
			v.check(tl.HasRestarted("sidecar"))
			v.check(tl.NotRestarted("main"))
			v.check(tl.RunTogether("sidecar", "main"))
			if _, ok := tl.Find("main", timeline.KindSigterm); ok {
				v.check(fmt.Errorf("main got SIGTERM while the sidecar crashed; want it untouched"))
			}
			sc, _ := containerStatus(p, "sidecar")
			mc, _ := containerStatus(p, "main")
			if mc.RestartCount != 0 || mc.State.Running == nil {
				v.check(fmt.Errorf("main: restarts=%d state=%s; want 0 restarts and running", mc.RestartCount, stateString(mc.State)))
			}
			if p.Status.Phase != corev1.PodRunning {
				v.check(fmt.Errorf("Pod phase %s; want Running while the sidecar crash-loops", p.Status.Phase))
			}
			msg := fmt.Sprintf("restartPolicy %s: sidecar restarts=%d (kubelet), main restarts=%d; sidecar exit -> restart %s",
				policy, sc.RestartCount, mc.RestartCount, restartGap(tl, "sidecar"))
			v.record("crashing sidecar restarted alone, restartPolicy "+string(policy), msg, tl.Model(string(policy), containerNames(pod), roles(pod)))
		},
		Entry("under restartPolicy Never", corev1.RestartPolicyNever),
		Entry("under restartPolicy Always", corev1.RestartPolicyAlways),
	)
})

// restartGap is the time from a container's first exit to its next start.
func restartGap(tl *timeline.Timeline, c string) string {
	runs := tl.Runs(c)
	if len(runs) < 2 || runs[0].Exiting.IsZero() || runs[1].Starting.IsZero() {
		return "n/a"
	}
	return fmt.Sprintf("%d ms", runs[1].Starting.Sub(runs[0].Exiting).Milliseconds())
}
