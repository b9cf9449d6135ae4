package config

import (
	"bytes"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestManifestsParse(t *testing.T) {
	t.Parallel()
	data, err := Manifests()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		doc = bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---"))
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if obj.Kind == "" || obj.Metadata.Name == "" {
			t.Fatalf("document %d: kind %q name %q; want both set", i, obj.Kind, obj.Metadata.Name)
		}
		kinds[obj.Kind]++
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service", "GatewayClass"} {
		if kinds[k] != 1 {
			t.Errorf("kind %s: got %d documents; want 1", k, kinds[k])
		}
	}
	if !strings.Contains(string(data), ControllerImage) || !strings.Contains(string(data), ProxyImage) || !strings.Contains(string(data), ControllerName) {
		t.Errorf("manifests do not reference %s, %s and %s", ControllerImage, ProxyImage, ControllerName)
	}
}
