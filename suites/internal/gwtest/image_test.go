package gwtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A suite that starts right after its image was loaded waits for the kubelet to list it (it
// does at its next node status update, up to 10 s later) instead of failing at once; an image
// no node ever lists still fails, saying what to do.
func TestAwaitImageWaitsForTheKubeletToListIt(t *testing.T) {
	const ref = "gatecheck.dev/echo-backend:dev"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}}}}}
	kube := fake.NewClientset(node)
	e := &Env{Kube: kube}
	ctx := context.Background()

	go func() {
		time.Sleep(300 * time.Millisecond)
		n := node.DeepCopy()
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: []string{"docker.io/" + ref}})
		if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	if err := e.awaitImage(ctx, ref, 5*time.Second, 20*time.Millisecond); err != nil {
		t.Fatalf("image listed after 300 ms: %v", err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("returned after %s, before the node listed the image", took)
	}

	err := e.awaitImage(ctx, "gatecheck.dev/missing:dev", 200*time.Millisecond, 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no node reports image gatecheck.dev/missing:dev in status.images after 200ms") {
		t.Fatalf("an image no node lists: got %v", err)
	}
}

// The kubelet reports at most 5 names per image (found on the host cluster: the echo image,
// also pulled from three test registries, was listed under five of those names and not as
// gatecheck.dev/echo-backend:dev). An image listed with 5 names may carry the one looked for:
// that is not "missing".
func TestAwaitImageWithTruncatedNames(t *testing.T) {
	const ref = "gatecheck.dev/echo-backend:dev"
	names := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("127.0.0.1:%d/e2e/%s", 30000+i, ref))
		}
		return out
	}
	for _, tc := range []struct {
		names   int
		wantErr bool
	}{{4, true}, {5, false}} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: names(tc.names)}}}}
		e := &Env{Kube: fake.NewClientset(node)}
		err := e.awaitImage(context.Background(), ref, 100*time.Millisecond, 20*time.Millisecond)
		if (err != nil) != tc.wantErr {
			t.Errorf("an image listed under %d other names: got %v, want an error: %v", tc.names, err, tc.wantErr)
		}
	}
}
