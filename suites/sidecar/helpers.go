package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"text/template"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	fixtures "github.com/gatecheck/gatecheck/fixtures/sidecar"
	"github.com/gatecheck/gatecheck/internal/wait"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

// eventsDir is where every lifecycle container mounts the Pod's shared emptyDir.
const eventsDir = "/events"

// Timeouts, named so a slow cluster is one edit away.
const (
	podStartTimeout = 2 * time.Minute
	podGoneTimeout  = 2 * time.Minute
)

// params are the template values every fixture gets; scenario values are merged in.
func params(name string, extra map[string]any) map[string]any {
	p := map[string]any{
		"Name":        name,
		"Namespace":   env.namespace,
		"Image":       *flagImage,
		"PullPolicy":  *flagPullPolicy,
		"EventsDir":   eventsDir,
		"StartupPath": lifecycleStartupPath,
		"ReadyPath":   lifecycleReadyPath,
	}
	maps.Copy(p, extra)
	return p
}

var templateFuncs = template.FuncMap{
	"lifecycle": func(kv ...string) (string, error) { return flowList(lifecycleArgs(kv...)) },
	"echoargs":  func(kv ...string) (string, error) { return flowList(echoArgs(kv...)) },
	"proxyargs": func(port int, upstream string) (string, error) { return flowList(proxyArgs(port, upstream), nil) },
}

func flowList(args []string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(args)
	return string(b), err
}

// render decodes a fixture into typed objects.
func render(fixture string, data map[string]any) []runtime.Object {
	GinkgoHelper()
	raw, err := fixtures.Render(fixture, data, templateFuncs)
	Expect(err).NotTo(HaveOccurred())
	var objs []runtime.Object
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var doc runtime.RawExtension
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			Fail(fmt.Sprintf("fixture %s: decode YAML: %v\n%s", fixture, err, raw))
		}
		if len(bytes.TrimSpace(doc.Raw)) == 0 || string(doc.Raw) == "null" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc.Raw, nil, nil)
		Expect(err).NotTo(HaveOccurred(), "fixture %s: decode object:\n%s", fixture, doc.Raw)
		objs = append(objs, obj)
	}
	return objs
}

// renderPod renders a fixture that holds exactly one Pod.
func renderPod(fixture string, data map[string]any) *corev1.Pod {
	GinkgoHelper()
	objs := render(fixture, data)
	Expect(objs).To(HaveLen(1), "fixture %s: want exactly one object", fixture)
	pod, ok := objs[0].(*corev1.Pod)
	Expect(ok).To(BeTrue(), "fixture %s: got a %T; want a Pod", fixture, objs[0])
	return pod
}

// createPod creates pod and registers its deletion (without waiting) for the end of the spec.
func createPod(ctx context.Context, pod *corev1.Pod) *corev1.Pod {
	GinkgoHelper()
	DeferCleanup(func(ctx context.Context) error {
		err := env.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	got, err := env.cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "create Pod %s/%s", pod.Namespace, pod.Name)
	return got
}

func ptrTo[T any](v T) *T { return &v }

// waitFor polls check with progress lines on the Ginkgo writer.
func waitFor(ctx context.Context, what string, timeout time.Duration, check wait.Check) error {
	_, err := wait.For(ctx, what, timeout, wait.Options{Interval: 250 * time.Millisecond, Out: GinkgoWriter}, check)
	return err
}

// waitPod polls the Pod until cond holds; cond returns a short status for progress lines.
func waitPod(ctx context.Context, name, what string, timeout time.Duration, cond func(*corev1.Pod) (bool, string)) *corev1.Pod {
	GinkgoHelper()
	var last *corev1.Pod
	err := waitFor(ctx, fmt.Sprintf("Pod %s/%s: %s", env.namespace, name, what), timeout, func(ctx context.Context) (bool, string, error) {
		p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		last = p
		if reason := stuck(p); reason != "" {
			return false, "", errors.New(reason)
		}
		ok, status := cond(p)
		return ok, status, nil
	})
	Expect(err).NotTo(HaveOccurred(), "pod status:\n%s", describe(last))
	return last
}

// stuck names a container state no wait can get out of (a missing image, a bad spec).
func stuck(p *corev1.Pod) string {
	for _, st := range allStatuses(p) {
		if w := st.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName", "CreateContainerError":
				return fmt.Sprintf("container %s of Pod %s/%s is stuck: %s: %s", st.Name, p.Namespace, p.Name, w.Reason, w.Message)
			}
		}
	}
	return ""
}

func allStatuses(p *corev1.Pod) []corev1.ContainerStatus {
	return append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
}

func containerStatus(p *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, st := range allStatuses(p) {
		if st.Name == name {
			return st, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// describe is a compact status dump for failure messages.
func describe(p *corev1.Pod) string {
	if p == nil {
		return "(never read)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", p.Status.Phase)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, ", %s=%s", c.Type, c.Status)
		if c.Message != "" {
			fmt.Fprintf(&b, " (%s)", c.Message)
		}
	}
	b.WriteByte('\n')
	for _, st := range allStatuses(p) {
		fmt.Fprintf(&b, "  %s: ready=%v started=%v restarts=%d state=%s\n", st.Name, st.Ready, st.Started != nil && *st.Started, st.RestartCount, stateString(st.State))
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format("15:04:05")
	case s.Terminated != nil:
		return fmt.Sprintf("terminated (%s, exit %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting (%s %s)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "unknown"
}

// allStarted holds when every named container reports started.
func allStarted(names ...string) func(*corev1.Pod) (bool, string) {
	return func(p *corev1.Pod) (bool, string) {
		var notYet []string
		for _, n := range names {
			st, ok := containerStatus(p, n)
			if !ok || st.Started == nil || !*st.Started {
				notYet = append(notYet, n)
			}
		}
		return len(notYet) == 0, "not started yet: " + strings.Join(notYet, ", ")
	}
}

// containerNames lists init then regular containers in declaration order.
func containerNames(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.InitContainers {
		out = append(out, c.Name)
	}
	for _, c := range p.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}

// roles names each container init, sidecar or main, for the report.
func roles(p *corev1.Pod) map[string]string {
	r := map[string]string{}
	for _, c := range p.Spec.InitContainers {
		r[c.Name] = "init"
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			r[c.Name] = "sidecar"
		}
	}
	for _, c := range p.Spec.Containers {
		r[c.Name] = "main"
	}
	return r
}

// collect reads the lifecycle events of every container from the kubelet's logs: each
// container's current log and, for restarted ones, the previous instance's. Containers that
// never started have no log and are skipped. The kubelet keeps one previous instance only, so
// for a container restarted more than once the earlier runs are missing here (they are in the
// shared events file, which the images cannot serve yet: no shell, no events endpoint).
func collect(ctx context.Context, name string) (*timeline.Timeline, *corev1.Pod) {
	GinkgoHelper()
	p, err := env.cs.CoreV1().Pods(env.namespace).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	var lists [][]timeline.Event
	for _, st := range allStatuses(p) {
		if st.State.Running != nil || st.State.Terminated != nil {
			lists = append(lists, readLog(ctx, p, st.Name, false))
		}
		if st.RestartCount > 0 {
			lists = append(lists, readLog(ctx, p, st.Name, true))
		}
	}
	return timeline.New(time.Time{}, timeline.DefaultTolerance, lists...), p
}

func readLog(ctx context.Context, p *corev1.Pod, container string, previous bool) []timeline.Event {
	GinkgoHelper()
	rc, err := env.cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, Previous: previous}).Stream(ctx)
	Expect(err).NotTo(HaveOccurred(), "read log of %s/%s container %s (previous=%v)", p.Namespace, p.Name, container, previous)
	defer rc.Close()
	src := fmt.Sprintf("log of %s/%s container %s", p.Namespace, p.Name, container)
	evs, err := timeline.Parse(src, rc, parseLifecycleLine)
	Expect(err).NotTo(HaveOccurred())
	return evs
}

// follower streams the logs of a Pod's containers until each container exits, so events of a
// Pod being deleted are kept although the Pod and its logs then disappear.
type follower struct {
	mu     sync.Mutex
	events map[string][]timeline.Event
	errs   []error
	wg     sync.WaitGroup
}

func follow(ctx context.Context, p *corev1.Pod, containers ...string) *follower {
	f := &follower{events: map[string][]timeline.Event{}}
	for _, c := range containers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer GinkgoRecover()
			rc, err := env.cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c, Follow: true}).Stream(ctx)
			if err != nil {
				f.fail(fmt.Errorf("follow log of container %s: %w", c, err))
				return
			}
			defer rc.Close()
			sc := bufio.NewScanner(rc)
			for sc.Scan() {
				ev, ok, err := parseLifecycleLine(sc.Text())
				if err != nil {
					f.fail(fmt.Errorf("log of container %s: %w", c, err))
					continue
				}
				if ok {
					f.mu.Lock()
					f.events[c] = append(f.events[c], ev)
					f.mu.Unlock()
				}
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				f.fail(fmt.Errorf("follow log of container %s: %w", c, err))
			}
		}()
	}
	return f
}

func (f *follower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
}

// attached waits until every stream delivered at least one event (the container's log from
// its start), so that deleting the Pod afterwards cannot race the streams' setup.
func (f *follower) attached(ctx context.Context, containers ...string) error {
	return waitFor(ctx, "log streams of "+strings.Join(containers, ", "), 30*time.Second, func(context.Context) (bool, string, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.errs) > 0 {
			return false, "", errors.Join(f.errs...)
		}
		var waiting []string
		for _, c := range containers {
			if len(f.events[c]) == 0 {
				waiting = append(waiting, c)
			}
		}
		return len(waiting) == 0, "no events yet from " + strings.Join(waiting, ", "), nil
	})
}

// wait returns the events once every stream ended, or what it has when timeout passes.
func (f *follower) wait(timeout time.Duration) ([][]timeline.Event, error) {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		return f.snapshot(), fmt.Errorf("log streams still open after %s", timeout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshotLocked(), errors.Join(f.errs...)
}

func (f *follower) snapshot() [][]timeline.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshotLocked()
}

func (f *follower) snapshotLocked() [][]timeline.Event {
	var out [][]timeline.Event
	for _, evs := range f.events {
		out = append(out, append([]timeline.Event(nil), evs...))
	}
	return out
}

// verdict gathers predicate results of a spec, records the timelines, then fails on any error.
type verdict struct {
	errs []error
}

func (v *verdict) check(err error) {
	if err != nil {
		v.errs = append(v.errs, err)
	}
}

// record attaches the timelines to the spec's report and prints them, then fails the spec if
// any check failed. message summarises the result (timings) for the report.
func (v *verdict) record(title, message string, variants ...model.SidecarTimeline) {
	GinkgoHelper()
	d := model.DecisionPass
	if len(v.errs) > 0 {
		d = model.DecisionFail
		var firsts []string
		for _, e := range v.errs {
			firsts = append(firsts, strings.SplitN(e.Error(), "; timeline", 2)[0])
		}
		message = strings.TrimSpace(message + " FAILED: " + strings.Join(firsts, "; "))
	}
	if variants == nil {
		variants = []model.SidecarTimeline{}
	}
	AddReportEntry(model.Entry(title, &model.SidecarTimelines{Variants: variants, Decision: d, Message: message}))
	Expect(errors.Join(v.errs...)).NotTo(HaveOccurred())
}

// logTimeline prints a timeline for the reader of the test output.
func logTimeline(label string, tl *timeline.Timeline) {
	fmt.Fprintf(GinkgoWriter, "%s (relative to %s):\n%s", label, tl.Origin.UTC().Format("15:04:05.000"), tl)
}

// collectUntil polls the logs until every want ("container kind") event is in the timeline.
func collectUntil(ctx context.Context, name string, timeout time.Duration, want ...string) (*timeline.Timeline, *corev1.Pod) {
	GinkgoHelper()
	var tl *timeline.Timeline
	var p *corev1.Pod
	err := waitFor(ctx, fmt.Sprintf("events %s of Pod %s/%s", strings.Join(want, ", "), env.namespace, name), timeout, func(ctx context.Context) (bool, string, error) {
		tl, p = collect(ctx, name)
		var missing []string
		for _, w := range want {
			c, k, _ := strings.Cut(w, " ")
			if _, ok := tl.Find(c, k); !ok {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, "missing: " + strings.Join(missing, ", "), nil
	})
	if err != nil && tl != nil {
		logTimeline("events so far", tl)
	}
	Expect(err).NotTo(HaveOccurred(), "pod status:\n%s", describe(p))
	return tl, p
}

// gapMs formats a gap for report messages.
func gapMs(tl *timeline.Timeline, a, kindA, b, kindB string) string {
	d, ok := tl.Gap(a, kindA, b, kindB)
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}
