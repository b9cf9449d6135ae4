package sidecar

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

// deleteAndFollow streams the containers' logs, deletes the Pod and returns the merged timeline
// once the Pod is gone.
func deleteAndFollow(ctx context.Context, name string, grace time.Duration, containers ...string) *timeline.Timeline {
	GinkgoHelper()
	p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	f := follow(ctx, p, containers...)
	Expect(f.attached(ctx, containers...)).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "deleting Pod %s at %s\n", name, time.Now().UTC().Format("15:04:05.000"))
	Expect(env.cs.CoreV1().Pods(env.namespace).Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
	Expect(waitFor(ctx, "Pod "+name+" gone after deletion", grace+podGoneTimeout, func(ctx context.Context) (bool, string, error) {
		_, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "still there", err
	})).To(Succeed())
	lists, err := f.wait(30 * time.Second)
	tl := timeline.New(time.Time{}, timeline.DefaultTolerance, lists...)
	if err != nil {
		logTimeline("events read before the error", tl)
	}
	Expect(err).NotTo(HaveOccurred())
	return tl
}

var _ = Describe("Native sidecar termination", Label("sidecar", "lifecycle:termination"), func() {
	It("signals the main container first, then the sidecars in reverse order once it has exited, all within the grace period", func(ctx SpecContext) {
		const grace = 15 * time.Second
		pod := createPod(ctx, renderPod("termination.yaml", params("termination", map[string]any{"GraceSeconds": int(grace.Seconds()), "Sidecar2StartupDelay": "0s"})))
		waitPod(ctx, pod.Name, "every container started", podStartTimeout, allStarted("sidecar-1", "sidecar-2", "main"))
		collectUntil(ctx, pod.Name, time.Minute, "main started")

		tl := deleteAndFollow(ctx, pod.Name, grace, "sidecar-1", "sidecar-2", "main")
		logTimeline("termination", tl)

		var v verdict
		v.check(tl.SigtermAfterExit("main", "sidecar-2"))
		v.check(tl.SigtermAfterExit("main", "sidecar-1"))
		v.check(tl.SigtermAfterExit("sidecar-2", "sidecar-1"))
		v.check(tl.ExitsBefore("main", "sidecar-2"))
		v.check(tl.ExitsBefore("sidecar-2", "sidecar-1"))
		first, ok := tl.Find("main", timeline.KindSigterm)
		if !ok {
			v.check(fmt.Errorf("main never got SIGTERM; want it signalled first"))
		} else {
			for _, c := range []string{"main", "sidecar-2", "sidecar-1"} {
				v.check(tl.ExitsBy(c, first.Time.Add(grace)))
				v.check(exitedOnSigterm(tl, c))
			}
		}
		msg := fmt.Sprintf("main exit -> sidecar-2 SIGTERM %s; sidecar-2 exit -> sidecar-1 SIGTERM %s; first SIGTERM -> last exit %s (grace %s)",
			gapMs(tl, "main", timeline.KindExiting, "sidecar-2", timeline.KindSigterm),
			gapMs(tl, "sidecar-2", timeline.KindExiting, "sidecar-1", timeline.KindSigterm),
			gapMs(tl, "main", timeline.KindSigterm, "sidecar-1", timeline.KindExiting), grace)
		v.record("termination order: main, then sidecars in reverse", msg, tl.Model("native", containerNames(pod), roles(pod)))
	})

	It("signals the sidecars on deletion although a later sidecar never started (so main never ran)", func(ctx SpecContext) {
		const grace = 15 * time.Second
		pod := createPod(ctx, renderPod("termination.yaml", params("termination-unstarted", map[string]any{
			"GraceSeconds": int(grace.Seconds()), "Sidecar2StartupDelay": "1h",
		})))
		waitPod(ctx, pod.Name, "sidecar-1 started, sidecar-2 running but not started", podStartTimeout, func(p *corev1.Pod) (bool, string) {
			s1, _ := containerStatus(p, "sidecar-1")
			s2, _ := containerStatus(p, "sidecar-2")
			return s1.Started != nil && *s1.Started && s2.State.Running != nil, fmt.Sprintf("sidecar-1 %s, sidecar-2 %s", stateString(s1.State), stateString(s2.State))
		})
		collectUntil(ctx, pod.Name, time.Minute, "sidecar-1 started", "sidecar-2 starting")

		tl := deleteAndFollow(ctx, pod.Name, grace, "sidecar-1", "sidecar-2")
		logTimeline("termination with an unstarted sidecar", tl)

		var v verdict
		v.check(tl.DoesntStart("main"))
		v.check(tl.SigtermAfterExit("sidecar-2", "sidecar-1"))
		first, ok := tl.Find("sidecar-2", timeline.KindSigterm)
		if !ok {
			v.check(fmt.Errorf("sidecar-2 (never started) got no SIGTERM; want the kubelet to signal it on deletion"))
		} else {
			for _, c := range []string{"sidecar-2", "sidecar-1"} {
				v.check(tl.ExitsBy(c, first.Time.Add(grace)))
			}
		}
		for _, c := range []string{"sidecar-1", "sidecar-2"} {
			v.check(exitedOnSigterm(tl, c))
		}
		msg := fmt.Sprintf("sidecar-2 SIGTERM -> sidecar-1 SIGTERM %s; first SIGTERM -> last exit %s (grace %s)",
			gapMs(tl, "sidecar-2", timeline.KindSigterm, "sidecar-1", timeline.KindSigterm),
			gapMs(tl, "sidecar-2", timeline.KindSigterm, "sidecar-1", timeline.KindExiting), grace)
		v.record("termination with a sidecar that never started", msg, tl.Model("native", containerNames(pod), roles(pod)))
	})
})

// exitedOnSigterm holds when c's last event is its own exit after SIGTERM: a container killed
// (SIGKILL at the end of the grace period) writes no "exiting" line.
func exitedOnSigterm(tl *timeline.Timeline, c string) error {
	runs := tl.Runs(c)
	if len(runs) == 0 {
		return fmt.Errorf("%s wrote no events; want it to exit after SIGTERM", c)
	}
	last := runs[len(runs)-1].Events[len(runs[len(runs)-1].Events)-1]
	if last.Kind != timeline.KindExiting || !strings.Contains(last.Detail, "reason=sigterm") {
		return fmt.Errorf("%s's last event is %q %q; want %q with reason=sigterm (an exit on SIGTERM, not a kill)", c, last.Kind, last.Detail, timeline.KindExiting)
	}
	return nil
}
