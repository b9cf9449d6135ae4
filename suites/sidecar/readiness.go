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

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

var _ = Describe("Native sidecar readiness", Label("sidecar", "lifecycle:readiness"), func() {
	It("keeps the Pod unready until the sidecar is ready, although the main container is", func(ctx SpecContext) {
		const readyDelay = 8 * time.Second
		pod := createPod(ctx, renderPod("readiness.yaml", params("readiness", map[string]any{"ReadyDelay": readyDelay.String()})))

		// Watch the status: we want to see main ready, sidecar unready and the Pod unready at
		// the same time, and later the Pod ready once the sidecar is.
		var sawMainOnly, sawReady bool
		var mainOnlyStatus string
		err := waitFor(ctx, "Pod "+pod.Name+" Ready after its sidecar", podStartTimeout, func(ctx context.Context) (bool, string, error) {
			p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			m, _ := containerStatus(p, "main")
			s, _ := containerStatus(p, "sidecar")
			if m.Ready && !s.Ready {
				if podReady(p) {
					return false, "", fmt.Errorf("Pod %s is Ready while its sidecar is not:\n%s", p.Name, describe(p))
				}
				if !sawMainOnly {
					sawMainOnly, mainOnlyStatus = true, describe(p)
				}
			}
			sawReady = podReady(p) && s.Ready && m.Ready
			return sawReady, fmt.Sprintf("main ready=%v sidecar ready=%v pod ready=%v", m.Ready, s.Ready, podReady(p)), nil
		})
		Expect(err).NotTo(HaveOccurred())
		tl, _ := collectUntil(ctx, pod.Name, time.Minute, "sidecar ready", "main ready")
		logTimeline("readiness", tl)

		var v verdict
		if !sawMainOnly {
			v.check(fmt.Errorf("never saw main ready while the sidecar was not (sidecar ready delay %s); cannot tell whether sidecar readiness counts", readyDelay))
		} else {
			fmt.Fprintf(GinkgoWriter, "main ready, sidecar not, Pod not Ready:\n%s", mainOnlyStatus)
		}
		v.check(tl.RunTogether("sidecar", "main"))
		msg := fmt.Sprintf("main ready %s before the sidecar; the Pod stayed unready until the sidecar was ready",
			gapMs(tl, "main", timeline.KindReady, "sidecar", timeline.KindReady))
		v.record("sidecar readiness counts toward Pod readiness", msg, tl.Model("native", containerNames(pod), roles(pod)))
	})
})
