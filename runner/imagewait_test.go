package runner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNodeLists(t *testing.T) {
	t.Parallel()
	images := []corev1.ContainerImage{
		{Names: []string{"registry.k8s.io/pause:3.10"}},
		{Names: []string{"docker.io/gatecheck.dev/echo-backend:dev", "sha256:abc"}},
	}
	for ref, want := range map[string]bool{
		"gatecheck.dev/echo-backend:dev":   true, // containerd may report it under docker.io/
		"registry.k8s.io/pause:3.10":       true,
		"gatecheck.dev/echo-backend:other": false,
		"echo-backend:dev":                 false,
	} {
		if got := nodeLists(images, ref); got != want {
			t.Errorf("nodeLists(%q) = %v; want %v", ref, got, want)
		}
	}
}
