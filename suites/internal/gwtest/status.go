package gwtest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Readiness of an applied object: ok, and a short status for progress lines and timeouts.
// Conditions older than the object's generation do not count: the controller has not seen
// the latest spec yet.

// gatewayReady reports whether a Gateway is Programmed for its current generation and, when
// needAddress, has an address (a port-forward or node port does not dial it).
func gatewayReady(u *unstructured.Unstructured, needAddress bool) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	gen := u.GetGeneration()
	prog := findCondition(conds, "Programmed")
	addrs, _, _ := unstructured.NestedSlice(u.Object, "status", "addresses")
	switch {
	case prog == nil:
		return false, "no Programmed condition yet"
	case prog.observedGen != 0 && prog.observedGen < gen:
		return false, fmt.Sprintf("Programmed is for generation %d; current %d", prog.observedGen, gen)
	case prog.status != "True":
		return false, fmt.Sprintf("Programmed=%s (%s: %s)", prog.status, prog.reason, prog.message)
	case len(addrs) == 0 && needAddress:
		return false, "Programmed but status.addresses is empty"
	case len(addrs) == 0:
		return true, "Programmed, no address"
	}
	return true, "Programmed, address " + GatewayAddress(u)
}

// GatewayAddress is the value of the Gateway's first status address, or "".
func GatewayAddress(u *unstructured.Unstructured) string {
	addrs, _, _ := unstructured.NestedSlice(u.Object, "status", "addresses")
	if len(addrs) == 0 {
		return ""
	}
	m, _ := addrs[0].(map[string]any)
	v, _ := m["value"].(string)
	return v
}

// routeReady reports whether a route (HTTPRoute, GRPCRoute, TCPRoute...) is Accepted, and
// when resolvedRefs is set also ResolvedRefs, by the parent Gateway named gateway for its
// current generation.
func routeReady(u *unstructured.Unstructured, gateway string, resolvedRefs bool) (bool, string) {
	parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	gen := u.GetGeneration()
	var seen []string
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		name, _, _ := unstructured.NestedString(pm, "parentRef", "name")
		if name != gateway {
			seen = append(seen, name)
			continue
		}
		conds, _, _ := unstructured.NestedSlice(pm, "conditions")
		want := []string{"Accepted"}
		if resolvedRefs {
			want = append(want, "ResolvedRefs")
		}
		var bad []string
		for _, t := range want {
			c := findCondition(conds, t)
			switch {
			case c == nil:
				bad = append(bad, "no "+t+" condition yet")
			case c.observedGen != 0 && c.observedGen < gen:
				bad = append(bad, fmt.Sprintf("%s is for generation %d; current %d", t, c.observedGen, gen))
			case c.status != "True":
				bad = append(bad, fmt.Sprintf("%s=%s (%s: %s)", t, c.status, c.reason, c.message))
			}
		}
		if len(bad) > 0 {
			return false, strings.Join(bad, "; ")
		}
		return true, strings.Join(want, "+")
	}
	if len(seen) > 0 {
		return false, fmt.Sprintf("no status for parent Gateway %s (parents: %s)", gateway, strings.Join(seen, ", "))
	}
	return false, "no status.parents yet"
}

// deploymentReady reports whether every replica of the current generation is available.
func deploymentReady(u *unstructured.Unstructured) (bool, string) {
	want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	obs, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	upd, _, _ := unstructured.NestedInt64(u.Object, "status", "updatedReplicas")
	avail, _, _ := unstructured.NestedInt64(u.Object, "status", "availableReplicas")
	total, _, _ := unstructured.NestedInt64(u.Object, "status", "replicas")
	switch {
	case obs < u.GetGeneration():
		return false, fmt.Sprintf("status is for generation %d; current %d", obs, u.GetGeneration())
	case want == 0:
		return total == 0, fmt.Sprintf("%d replicas left; want 0", total)
	case upd < want || avail < want || total > want:
		return false, fmt.Sprintf("%d/%d updated, %d/%d available, %d total", upd, want, avail, want, total)
	}
	return true, fmt.Sprintf("%d/%d available", avail, want)
}

// podStuck names a container state that no amount of waiting fixes (a missing image on a
// cluster without a registry, a bad container spec), or "".
func podStuck(p *corev1.Pod) string {
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := st.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
				return fmt.Sprintf("Pod %s/%s container %s: %s: %s (is image %s loaded on the node? there is no registry)",
					p.Namespace, p.Name, st.Name, w.Reason, w.Message, st.Image)
			case "CrashLoopBackOff":
				return fmt.Sprintf("Pod %s/%s container %s: CrashLoopBackOff after %d restarts: %s (read: kubectl -n %s logs %s -c %s --previous)",
					p.Namespace, p.Name, st.Name, st.RestartCount, w.Message, p.Namespace, p.Name, st.Name)
			}
		}
	}
	return ""
}

type condition struct {
	status, reason, message string
	observedGen             int64
}

func findCondition(conds []any, typ string) *condition {
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if t, _ := m["type"].(string); t != typ {
			continue
		}
		out := &condition{}
		out.status, _ = m["status"].(string)
		out.reason, _ = m["reason"].(string)
		out.message, _ = m["message"].(string)
		switch g := m["observedGeneration"].(type) {
		case int64:
			out.observedGen = g
		case float64:
			out.observedGen = int64(g)
		case int:
			out.observedGen = int64(g)
		}
		return out
	}
	return nil
}
