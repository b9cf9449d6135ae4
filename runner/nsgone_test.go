package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install"
)

func TestWaitNamespacesGone(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	ns := func(name string, labels map[string]string, deleting bool, conds ...corev1.NamespaceCondition) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Status: corev1.NamespaceStatus{Conditions: conds}}
		if deleting {
			n.DeletionTimestamp = &now
		}
		return n
	}
	ours := map[string]string{"app.kubernetes.io/part-of": "gatecheck"}
	held := corev1.NamespaceCondition{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue,
		Message: "Some content in the namespace has finalizers remaining: gateway-exists-finalizer.example.io in 1 resource instances"}

	t.Run("waits until the terminating ones are gone", func(t *testing.T) {
		t.Parallel()
		cs := fake.NewClientset(
			ns("gatecheck-canary-x1", ours, true),
			ns("gatecheck-kept", ours, false),              // kept on purpose: not waited for
			ns("someone-elses", map[string]string{}, true), // not ours
		)
		go func() {
			time.Sleep(600 * time.Millisecond)
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), "gatecheck-canary-x1", metav1.DeleteOptions{})
		}()
		start := time.Now()
		if err := waitNamespacesGone(t.Context(), cs, 10*time.Second, nil); err != nil {
			t.Fatalf("waitNamespacesGone: %v", err)
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("returned after %v, before the terminating namespace was gone (600 ms)", d)
		}
	})
	t.Run("names what is left and why", func(t *testing.T) {
		t.Parallel()
		cs := fake.NewClientset(ns("gatecheck-dataplane-probe", ours, true, held))
		err := waitNamespacesGone(t.Context(), cs, 700*time.Millisecond, nil)
		if err == nil || !strings.Contains(err.Error(), "gatecheck-dataplane-probe (NamespaceFinalizersRemaining: Some content") ||
			!strings.Contains(err.Error(), "gateway-exists-finalizer.example.io") {
			t.Fatalf("err = %v; want the namespace named with its finalizers", err)
		}
	})
}

// Teardown waits for gatecheck's namespaces only before an uninstall that removes something.
func TestImplRemoves(t *testing.T) {
	t.Parallel()
	prof := func(in impls.Install) *impls.Profile { return &impls.Profile{Install: in} }
	for _, c := range []struct {
		name string
		ii   implInstaller
		want bool
	}{
		{"installed by someone else", implInstaller{profile: prof(impls.Install{Kind: impls.InstallNone})}, false},
		{"helm", implInstaller{profile: prof(impls.Install{Kind: impls.InstallHelm})}, true},
		{"script with uninstall", implInstaller{profile: prof(impls.Install{Kind: impls.InstallScript, Script: &impls.Script{Uninstall: []string{"./down.sh"}}})}, true},
		{"script without uninstall", implInstaller{profile: prof(impls.Install{Kind: impls.InstallScript, Script: &impls.Script{}})}, false},
		{"manifests that created objects", implInstaller{profile: prof(impls.Install{Kind: impls.InstallManifests}), applied: make([]install.Object, 2)}, true},
		{"manifests that created nothing new", implInstaller{profile: prof(impls.Install{Kind: impls.InstallManifests})}, false},
	} {
		if got := c.ii.removes(); got != c.want {
			t.Errorf("%s: removes() = %v; want %v", c.name, got, c.want)
		}
	}
}
