package sidecar

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

var _ = Describe("Native sidecar in a Job", Label("sidecar", "lifecycle:job"), func() {
	It("completes the Job when the main container finishes although the sidecar would run forever", func(ctx SpecContext) {
		const mainRuns = 3 * time.Second
		objs := render("job.yaml", params("job", map[string]any{"MainRuns": mainRuns.String()}))
		Expect(objs).To(HaveLen(1))
		job, ok := objs[0].(*batchv1.Job)
		Expect(ok).To(BeTrue(), "job.yaml: got %T; want a Job", objs[0])
		DeferCleanup(func(ctx context.Context) error {
			bg := metav1.DeletePropagationBackground
			err := env.cs.BatchV1().Jobs(env.namespace).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		created := time.Now()
		_, err := env.cs.BatchV1().Jobs(env.namespace).Create(ctx, job, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		var done *batchv1.Job
		Expect(waitFor(ctx, "Job "+job.Name+" Complete", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			j, err := env.cs.BatchV1().Jobs(env.namespace).Get(ctx, job.Name, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			done = j
			for _, c := range j.Status.Conditions {
				if c.Status != corev1.ConditionTrue {
					continue
				}
				switch c.Type {
				case batchv1.JobComplete:
					return true, "", nil
				case batchv1.JobFailed:
					return false, "", fmt.Errorf("Job %s failed: %s: %s", j.Name, c.Reason, c.Message)
				}
			}
			return false, fmt.Sprintf("active=%d succeeded=%d failed=%d", j.Status.Active, j.Status.Succeeded, j.Status.Failed), nil
		})).To(Succeed())
		took := time.Since(created)

		pods, err := env.cs.CoreV1().Pods(env.namespace).List(ctx, metav1.ListOptions{LabelSelector: "gatecheck.dev/job=" + job.Name})
		Expect(err).NotTo(HaveOccurred())
		Expect(pods.Items).To(HaveLen(1), "pods of Job %s", job.Name)
		pod := &pods.Items[0]
		// The sidecar is stopped after main exits; its last lines land just before the Pod
		// reaches Succeeded, so read once every container has terminated.
		waitPod(ctx, pod.Name, "every container terminated", time.Minute, func(p *corev1.Pod) (bool, string) {
			for _, st := range allStatuses(p) {
				if st.State.Terminated == nil {
					return false, st.Name + " " + stateString(st.State)
				}
			}
			return true, ""
		})
		tl, p := collectUntil(ctx, pod.Name, 30*time.Second, "main exiting", "sidecar exiting")
		logTimeline("Job with a sidecar", tl)

		var v verdict
		v.check(tl.StartsBefore("sidecar", "main"))
		v.check(tl.SigtermAfterExit("main", "sidecar"))
		v.check(tl.ExitsBefore("main", "sidecar"))
		if done.Status.Succeeded != 1 {
			v.check(fmt.Errorf("Job %s: succeeded=%d; want 1", done.Name, done.Status.Succeeded))
		}
		if p.Status.Phase != corev1.PodSucceeded {
			v.check(fmt.Errorf("Pod %s phase %s; want Succeeded (the sidecar's exit must not fail the Pod)", p.Name, p.Status.Phase))
		}
		msg := fmt.Sprintf("Job complete %s after creation (main runs %s); main exit -> sidecar SIGTERM %s; Pod %s",
			took.Round(100*time.Millisecond), mainRuns, gapMs(tl, "main", timeline.KindExiting, "sidecar", timeline.KindSigterm), p.Status.Phase)
		v.record("Job completes with a forever sidecar", msg, tl.Model("job", containerNames(p), roles(p)))
	})
})
