package identity_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
)

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"BACKEND": "b", "POD_NAME": "p", "NAMESPACE": "n", "SERVICE_NAME": "s", "INGRESS_NAME": "i"}
	got := identity.FromEnv(func(k string) string { return env[k] })
	want := identity.Identity{Backend: "b", Pod: "p", Namespace: "n", Service: "s", Ingress: "i"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("FromEnv (-want +got):\n%s", d)
	}
}
