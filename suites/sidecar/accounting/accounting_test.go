package accounting

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func ctr(name, cpu string, sidecar bool) corev1.Container {
	c := corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}
	if sidecar {
		always := corev1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
	}
	return c
}

func TestPodRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		init []corev1.Container
		main []corev1.Container
		want string // millicores
	}{
		{"main only", nil, []corev1.Container{ctr("m", "300m", false)}, "300m"},
		{"init smaller than main", []corev1.Container{ctr("i", "200m", false)}, []corev1.Container{ctr("m", "300m", false)}, "300m"},
		{"init larger than main", []corev1.Container{ctr("i", "500m", false)}, []corev1.Container{ctr("m", "300m", false)}, "500m"},
		{"sidecar adds to main", []corev1.Container{ctr("s", "200m", true)}, []corev1.Container{ctr("m", "300m", false)}, "500m"},
		// The init container after the sidecar runs next to it: 200m + 600m.
		{"init after sidecar", []corev1.Container{ctr("s", "200m", true), ctr("i", "600m", false)}, []corev1.Container{ctr("m", "300m", false)}, "800m"},
		// The init container before the sidecar runs alone: max(600m, 200m+300m).
		{"init before sidecar", []corev1.Container{ctr("i", "600m", false), ctr("s", "200m", true)}, []corev1.Container{ctr("m", "300m", false)}, "600m"},
		{"two sidecars and two mains", []corev1.Container{ctr("s1", "100m", true), ctr("s2", "150m", true)}, []corev1.Container{ctr("m1", "300m", false), ctr("m2", "50m", false)}, "600m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := PodRequests(&corev1.PodSpec{InitContainers: tc.init, Containers: tc.main})
			cpu := got[corev1.ResourceCPU]
			if want := resource.MustParse(tc.want); cpu.Cmp(want) != 0 {
				t.Errorf("got cpu %s; want %s", cpu.String(), want.String())
			}
		})
	}
}

func TestPodRequestsOverhead(t *testing.T) {
	t.Parallel()
	spec := &corev1.PodSpec{
		Containers: []corev1.Container{ctr("m", "100m", false)},
		Overhead:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")},
	}
	cpu := PodRequests(spec)[corev1.ResourceCPU]
	if cpu.MilliValue() != 150 {
		t.Errorf("got %dm; want 150m", cpu.MilliValue())
	}
}
