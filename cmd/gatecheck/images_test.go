package main

import (
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/cluster/images"
)

// The references install.helm.images sets come from the same specs the images are built from.
func TestImageBuilderReference(t *testing.T) {
	t.Parallel()
	b := imageBuilder{}
	for name, want := range map[string]string{"controller": images.ControllerImage, "proxy": images.ProxyImage, "echo-backend": images.EchoBackendImage} {
		if got, err := b.Reference(name); err != nil || got != want {
			t.Errorf("Reference(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := b.Reference("nginx"); err == nil || !strings.Contains(err.Error(), `profile images.build: unknown image "nginx"`) {
		t.Errorf("Reference(nginx): %v; want the unknown image named", err)
	}
}
