package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gatecheck/gatecheck/internal/wait"
)

// partOfGatecheck labels the namespaces gatecheck's own code creates on a cluster: the
// data-plane probe's and each suite's (suites/internal/gwtest). Nothing else may carry it.
const partOfGatecheck = "app.kubernetes.io/part-of=gatecheck"

// namespacesGoneTimeout bounds how long teardown waits for them before it uninstalls anyway;
// it leaves the uninstall two of teardown's three minutes.
const namespacesGoneTimeout = time.Minute

// waitNamespacesGone waits for gatecheck's namespaces that are being deleted to be gone. The
// probe and the suites delete theirs without waiting; their Gateways and routes may carry the
// implementation's finalizers, which only the implementation removes, so on a cluster
// gatecheck did not create it must not be uninstalled first: the namespaces would stay
// Terminating on the user's cluster. What is still there after the timeout is named, with
// the namespace's own account of what holds it (its status conditions), as an error; the
// caller reports it and uninstalls anyway. A namespace not being deleted (kept on purpose:
// GATECHECK_KEEP_NAMESPACE) is not waited for.
func waitNamespacesGone(ctx context.Context, cs kubernetes.Interface, timeout time.Duration, out io.Writer) error {
	var left map[string]string
	_, err := wait.For(ctx, "gatecheck's namespaces to finish terminating", timeout, wait.Options{Interval: 250 * time.Millisecond, Out: out},
		func(ctx context.Context) (bool, string, error) {
			list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: partOfGatecheck})
			if err != nil {
				return false, "", fmt.Errorf("list namespaces (%s): %w", partOfGatecheck, err)
			}
			left = map[string]string{}
			for _, ns := range list.Items {
				if ns.DeletionTimestamp == nil {
					continue
				}
				var why []string
				for _, c := range ns.Status.Conditions {
					if c.Status == "True" && c.Message != "" {
						why = append(why, fmt.Sprintf("%s: %s", c.Type, c.Message))
					}
				}
				left[ns.Name] = strings.Join(why, "; ")
			}
			return len(left) == 0, fmt.Sprintf("%d terminating: %s", len(left), describeLeft(left)), nil
		})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("after %s, still terminating: %s", timeout, describeLeft(left))
	}
	return err
}

func describeLeft(left map[string]string) string {
	names := make([]string, 0, len(left))
	for n := range left {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if left[n] != "" {
			names[i] = n + " (" + left[n] + ")"
		}
	}
	return strings.Join(names, ", ")
}
