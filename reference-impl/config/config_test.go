package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// manifests returns every manifest in this directory as one YAML stream, in apply order (file
// name order, as the profile's glob applies them).
func manifests(t *testing.T) []byte {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("manifests: %v (%d files)", err, len(files))
	}
	slices.Sort(files)
	var b bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n---\n")
		b.Write(data)
	}
	return b.Bytes()
}

// documents splits manifests into non-empty YAML documents.
func documents(t *testing.T) [][]byte {
	var out [][]byte
	for _, doc := range bytes.Split(manifests(t), []byte("\n---\n")) {
		doc = bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---"))
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
	return out
}

func TestManifestsParse(t *testing.T) {
	t.Parallel()
	kinds := map[string]int{}
	for i, doc := range documents(t) {
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
	data := string(manifests(t))
	for _, want := range []string{"gatecheck.dev/reference-controller:dev", "gatecheck.dev/reference-proxy:dev", "gatecheck.dev/reference"} {
		if !strings.Contains(data, want) {
			t.Errorf("manifests do not reference %s", want)
		}
	}
}

// TestSecretsNeverListed: the controller's RBAC lets it GET Secrets (those listeners
// reference) and write its own, never list or watch them (issue 17 item 4).
func TestSecretsNeverListed(t *testing.T) {
	t.Parallel()
	found := false
	for _, doc := range documents(t) {
		var role rbacv1.ClusterRole
		if yaml.Unmarshal(doc, &role) != nil || (role.Kind != "ClusterRole" && role.Kind != "Role") {
			continue
		}
		for _, r := range role.Rules {
			if !slices.Contains(r.APIGroups, "") || !(slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*")) {
				continue
			}
			found = true
			for _, v := range r.Verbs {
				if v == "list" || v == "watch" || v == "*" {
					t.Errorf("%s %s: secrets verb %q; want none of list, watch, *", role.Kind, role.Name, v)
				}
			}
		}
	}
	if !found {
		t.Errorf("no rule for secrets: the controller needs get (listener certificates) and create/update/delete (proxy certificates)")
	}
}

// TestConfigMapsOnlyGot: the controller's RBAC lets it GET ConfigMaps (the CA certificates
// Gateways reference) and nothing else: no list, watch or writes.
func TestConfigMapsOnlyGot(t *testing.T) {
	t.Parallel()
	found := false
	for _, doc := range documents(t) {
		var role rbacv1.ClusterRole
		if yaml.Unmarshal(doc, &role) != nil || (role.Kind != "ClusterRole" && role.Kind != "Role") {
			continue
		}
		for _, r := range role.Rules {
			if !slices.Contains(r.APIGroups, "") || !(slices.Contains(r.Resources, "configmaps") || slices.Contains(r.Resources, "*")) {
				continue
			}
			found = true
			for _, v := range r.Verbs {
				if v != "get" {
					t.Errorf("%s %s: configmaps verb %q; want only get", role.Kind, role.Name, v)
				}
			}
		}
	}
	if !found {
		t.Errorf("no rule for configmaps: the controller needs get (CA certificates of frontend validation)")
	}
}
