package config

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestControllerRunsRestricted checks the controller Deployment meets the Pod Security
// "restricted" profile with a read-only root filesystem.
func TestControllerRunsRestricted(t *testing.T) {
	t.Parallel()
	found := false
	for _, doc := range documents(t) {
		var d appsv1.Deployment
		if yaml.Unmarshal(doc, &d) != nil || d.Kind != "Deployment" {
			continue
		}
		found = true
		psc := d.Spec.Template.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("deployment %s: pod securityContext %+v; want runAsNonRoot with a non-zero runAsUser", d.Name, psc)
		} else if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("deployment %s: seccompProfile %+v; want RuntimeDefault", d.Name, psc.SeccompProfile)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("deployment %s container %s: securityContext %+v; want no privilege escalation, read-only root, drop [ALL]", d.Name, c.Name, sc)
			}
		}
	}
	if !found {
		t.Fatal("no Deployment in the manifests")
	}
}
