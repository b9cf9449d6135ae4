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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatecheck/gatecheck/suites/sidecar/accounting"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

// freeCPU is the node's allocatable CPU minus what its non-terminal Pods request, by the same
// rule the scheduler applies.
func freeCPU(ctx context.Context) (free, alloc int64) {
	GinkgoHelper()
	n, err := env.cs.CoreV1().Nodes().Get(ctx, env.node, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	alloc = n.Status.Allocatable.Cpu().MilliValue()
	pods, err := env.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + env.node})
	Expect(err).NotTo(HaveOccurred())
	used := int64(0)
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		cpu := accounting.PodRequests(&p.Spec)[corev1.ResourceCPU]
		used += cpu.MilliValue()
	}
	return alloc - used, alloc
}

// scheduled waits for the scheduler's decision on a Pod: true when bound, false when it
// reported Unschedulable; the message is the scheduler's.
func scheduled(ctx context.Context, name string) (bool, string) {
	GinkgoHelper()
	var ok bool
	var msg string
	Expect(waitFor(ctx, "scheduler decision on Pod "+name, time.Minute, func(ctx context.Context) (bool, string, error) {
		p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if p.Spec.NodeName != "" {
			ok, msg = true, "bound to "+p.Spec.NodeName
			return true, "", nil
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				ok, msg = false, c.Message
				return true, "", nil
			}
		}
		return false, "pending, no decision yet", nil
	})).To(Succeed())
	return ok, msg
}

func deleteNow(ctx context.Context, name string) {
	GinkgoHelper()
	err := env.cs.CoreV1().Pods(env.namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))})
	if !apierrors.IsNotFound(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(waitFor(ctx, "Pod "+name+" gone", podGoneTimeout, func(ctx context.Context) (bool, string, error) {
		_, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "terminating", err
	})).To(Succeed())
}

var _ = Describe("Native sidecar resource accounting", Label("sidecar", "lifecycle:resources", suiteenv.QuietLabel), Serial, func() {
	It("makes the scheduler reserve sidecar requests on top of the main container's, and init requests only as a peak", func(ctx SpecContext) {
		free, alloc := freeCPU(ctx)
		fmt.Fprintf(GinkgoWriter, "node %s: %dm CPU allocatable, %dm not requested\n", env.node, alloc, free)
		Expect(free).To(BeNumerically(">=", 200), "node %s has only %dm CPU unrequested; the spec needs 200m", env.node, free)

		cases := []struct {
			name         string
			native       bool
			helper, main int64 // fractions of free, in percent
		}{
			// 60% + 60% = 120% of what is free: fits only if the sidecar were not counted.
			{"res-sidecar-over", true, 60, 60},
			// The same requests with the helper as a one-shot init container: max(60%, 60%).
			{"res-init-fits", false, 60, 60},
			// 45% + 45% = 90%: a sidecar within the budget is admitted.
			{"res-sidecar-fits", true, 45, 45},
		}
		var v verdict
		var lines []string
		for _, c := range cases {
			// Measured again before each case: other suites may have scheduled Pods meanwhile.
			free, _ = freeCPU(ctx)
			helper, main := free*c.helper/100, free*c.main/100
			pod := renderPod("resources.yaml", params(c.name, map[string]any{
				"Native": c.native, "HelperCPU": fmt.Sprintf("%dm", helper), "MainCPU": fmt.Sprintf("%dm", main),
			}))
			effective := accounting.PodRequests(&pod.Spec)[corev1.ResourceCPU]
			want := effective.Cmp(*resource.NewMilliQuantity(free, resource.DecimalSI)) <= 0
			createPod(ctx, pod)
			got, msg := scheduled(ctx, pod.Name)
			role := "init"
			if c.native {
				role = "sidecar"
			}
			line := fmt.Sprintf("%s: %s %dm + main %dm -> effective %s of %dm free; scheduler: fits=%v (%s)",
				c.name, role, helper, main, effective.String(), free, got, msg)
			lines = append(lines, line)
			fmt.Fprintln(GinkgoWriter, line)
			if got != want {
				v.check(fmt.Errorf("%s: scheduler fits=%v; want fits=%v by the sidecar formula (effective request %s, %dm free): %s", c.name, got, want, effective.String(), free, msg))
			}
			if !got && !strings.Contains(msg, "Insufficient cpu") {
				v.check(fmt.Errorf("%s: unschedulable for another reason than CPU: %s", c.name, msg))
			}
			deleteNow(ctx, pod.Name)
		}
		// The report has no resource payload: the cases go in the message and a note, no timelines.
		AddReportEntry("resource accounting", strings.Join(lines, "\n"))
		v.record("resource accounting by the scheduler", strings.Join(lines, "; "))
	})
})
