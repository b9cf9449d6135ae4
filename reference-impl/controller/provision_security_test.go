package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestProvisionedProxyRunsRestricted checks the proxy Pod meets the Pod Security
// "restricted" profile (non-root, no privilege escalation, all capabilities dropped,
// RuntimeDefault seccomp) with a read-only root filesystem, and can still bind listener
// ports below 1024 through its network namespace's unprivileged port start.
func TestProvisionedProxyRunsRestricted(t *testing.T) {
	t.Parallel()
	p := &provisioner{image: "img:dev", serviceType: corev1.ServiceTypeClusterIP, replicas: 1}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u"}}
	pod := p.deployment(gw, "http://ctl").Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Fatalf("pod securityContext: got %+v; want runAsNonRoot with a non-zero runAsUser", psc)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile: got %+v; want RuntimeDefault", psc.SeccompProfile)
	}
	port := ""
	for _, s := range psc.Sysctls {
		if s.Name == "net.ipv4.ip_unprivileged_port_start" {
			port = s.Value
		}
	}
	if port != "0" {
		t.Errorf("sysctl net.ipv4.ip_unprivileged_port_start: got %q; want \"0\" (a non-root proxy must bind listener ports 80 and 443)", port)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s: no securityContext", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
		case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
			t.Errorf("container %s: capabilities: got %+v; want drop [ALL] and nothing added", c.Name, sc.Capabilities)
		}
	}
}
