package runner

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/internal/wait"
)

// waitNodesList waits until every node lists each of refs in status.images. The suites check
// there that an image they run was loaded (no registry to pull from), and the kubelet adds a
// newly imported image to its status only at its next status update (up to ~10 s later): a
// suite starting right after the images step, as the ones running alongside the upstream
// suite do, would otherwise find the image missing.
func waitNodesList(ctx context.Context, cfg *rest.Config, refs []string, out io.Writer) error {
	if len(refs) == 0 || cfg == nil {
		return nil
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	what := "every node to list " + strings.Join(refs, ", ") + " in status.images"
	_, err = wait.For(ctx, what, 30*time.Second, wait.Options{Out: out}, func(ctx context.Context) (bool, string, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if len(nodes.Items) == 0 {
			return false, "no nodes", nil
		}
		for _, n := range nodes.Items {
			for _, ref := range refs {
				if !nodeLists(n.Status.Images, ref) {
					return false, fmt.Sprintf("node %s does not list %s yet", n.Name, ref), nil
				}
			}
		}
		return true, "", nil
	})
	return err
}

// nodeLists: an image entry names ref (as containerd reports it, or with docker.io/ before it).
func nodeLists(images []corev1.ContainerImage, ref string) bool {
	for _, img := range images {
		if slices.Contains(img.Names, ref) || slices.Contains(img.Names, "docker.io/"+ref) {
			return true
		}
	}
	return false
}
