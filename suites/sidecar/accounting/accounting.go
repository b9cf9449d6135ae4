// Package accounting computes a Pod's effective resource requests by the native sidecar rule
// (KEP-753), independently of the scheduler, so the suite can check the scheduler against it.
package accounting

import (
	corev1 "k8s.io/api/core/v1"
)

// PodRequests is what the scheduler should reserve for spec: the larger of
//   - every sidecar plus every regular container, summed, and
//   - for each init container in order, its own request plus the sidecars declared before it
//     (for a sidecar: itself plus the sidecars before it),
//
// plus the Pod overhead. Kubernetes' component-helpers implement the same rule; this is written
// from the KEP so that the scheduler is not checked against its own code.
func PodRequests(spec *corev1.PodSpec) corev1.ResourceList {
	total := corev1.ResourceList{}
	for _, c := range spec.Containers {
		add(total, c.Resources.Requests)
	}
	sidecars := corev1.ResourceList{}
	initPeak := corev1.ResourceList{}
	for _, c := range spec.InitContainers {
		use := corev1.ResourceList{}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(sidecars, c.Resources.Requests)
			add(total, c.Resources.Requests)
			add(use, sidecars)
		} else {
			add(use, c.Resources.Requests)
			add(use, sidecars)
		}
		maxInto(initPeak, use)
	}
	maxInto(total, initPeak)
	add(total, spec.Overhead)
	return total
}

func add(dst, src corev1.ResourceList) {
	for name, q := range src {
		cur := dst[name]
		cur.Add(q)
		dst[name] = cur
	}
}

func maxInto(dst, src corev1.ResourceList) {
	for name, q := range src {
		if cur, ok := dst[name]; !ok || q.Cmp(cur) > 0 {
			dst[name] = q.DeepCopy()
		}
	}
}
