package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/internal/wait"
)

// PrepullNamespace holds the pods Prepull runs; it is deleted when they are done.
const PrepullNamespace = "gatecheck-prepull"

// Prepull pulls images onto every schedulable node before anything uses them: one pod per node
// and image, imagePullPolicy Always, so each is pulled from its registry (not found already on
// the node). The pods that then use them (IfNotPresent) find them on the node. The nodes'
// status.images is no proof: the kubelet lists at most 5 names per image, repo digests first,
// so an image known under several names (pushed to several registries) may not show the new one. A pull that fails (registry unreachable from the nodes, plain HTTP refused, image
// missing) is an error naming the image, the node and the kubelet's message. The namespace is
// removed afterwards, whatever happened.
func Prepull(ctx context.Context, cfg *rest.Config, images []string, timeout time.Duration, out io.Writer) error {
	if len(images) == 0 {
		return nil
	}
	if out == nil {
		out = io.Discard
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("pre-pull: list nodes: %w", err)
	}
	var names []string
	for _, n := range nodes.Items {
		if !n.Spec.Unschedulable {
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return errors.New("pre-pull: no schedulable node")
	}
	sort.Strings(images)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PrepullNamespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "gatecheck"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("pre-pull: create namespace %s: %w", PrepullNamespace, err)
	}
	defer func() {
		// Its own context: a cancelled run still removes what it created. Wait until it is gone,
		// so the next pre-pull (or run) does not meet a namespace still terminating.
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(dctx, PrepullNamespace, metav1.DeleteOptions{}); err != nil {
			return
		}
		_, _ = wait.For(dctx, "namespace "+PrepullNamespace+" to be deleted", time.Minute, wait.Options{Out: out}, func(ctx context.Context) (bool, string, error) {
			_, err := cs.CoreV1().Namespaces().Get(ctx, PrepullNamespace, metav1.GetOptions{})
			return apierrors.IsNotFound(err), "terminating", nil
		})
	}()
	type job struct{ pod, node, image string }
	var jobs []job
	for _, node := range names {
		for i, img := range images {
			pod := prepullPod(node, i, img)
			if _, err := cs.CoreV1().Pods(PrepullNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("pre-pull %s on node %s: create pod: %w", img, node, err)
			}
			jobs = append(jobs, job{pod.Name, node, img})
		}
	}
	fmt.Fprintf(out, "  pulling %d images on %d nodes (imagePullPolicy Always, pods in namespace %s)\n", len(images), len(names), PrepullNamespace)
	pulled := map[string]bool{}
	_, err = wait.For(ctx, fmt.Sprintf("%d image pulls", len(jobs)), timeout, wait.Options{Out: out}, func(ctx context.Context) (bool, string, error) {
		var waiting []string
		for _, j := range jobs {
			if pulled[j.pod] {
				continue
			}
			p, err := cs.CoreV1().Pods(PrepullNamespace).Get(ctx, j.pod, metav1.GetOptions{})
			if err != nil {
				return false, "", fmt.Errorf("pre-pull %s on node %s: %w", j.image, j.node, err)
			}
			done, why, err := pullState(p)
			if err != nil {
				return false, "", fmt.Errorf("pre-pull %s on node %s: %w", j.image, j.node, err)
			}
			if done {
				pulled[j.pod] = true
				fmt.Fprintf(out, "  pulled %s on node %s\n", j.image, j.node)
				continue
			}
			waiting = append(waiting, j.image+" ("+why+")")
		}
		return len(waiting) == 0, "waiting for " + strings.Join(waiting, ", "), nil
	})
	return err
}

func prepullPod(node string, i int, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pull-%d-%s", i, truncate(node, 40)), Namespace: PrepullNamespace},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: corev1.RestartPolicyNever,
			// The image's own program runs or fails: either way the image was pulled.
			Containers:                    []corev1.Container{{Name: "pull", Image: image, ImagePullPolicy: corev1.PullAlways}},
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  new(bool),
		},
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "-.")
	}
	return s
}

// pullState reads a pre-pull pod: done once its container exists (the image is on the node),
// an error when the kubelet reports a pull that cannot succeed.
func pullState(p *corev1.Pod) (bool, string, error) {
	if len(p.Status.ContainerStatuses) == 0 {
		return false, "pod " + string(p.Status.Phase), nil
	}
	st := p.Status.ContainerStatuses[0]
	if st.ImageID != "" || st.State.Running != nil || st.State.Terminated != nil {
		return true, "", nil
	}
	if w := st.State.Waiting; w != nil {
		switch w.Reason {
		case "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable":
			return false, "", fmt.Errorf("the kubelet cannot pull it: %s: %s (the nodes' container runtime must reach the registry; a plain-HTTP one must be configured as such, e.g. containerd's hosts.toml)", w.Reason, w.Message)
		}
		return false, w.Reason, nil
	}
	return false, "container not started", nil
}
