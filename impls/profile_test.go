package impls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReferenceProfileLoads(t *testing.T) {
	t.Parallel()
	p, err := Find("..", "reference")
	if err != nil {
		t.Fatal(err)
	}
	if p.GatewayClass.Name != "gatecheck-reference" || p.GatewayClass.ControllerName != "gatecheck.dev/reference" {
		t.Fatalf("gatewayClass = %+v; want gatecheck-reference / gatecheck.dev/reference", p.GatewayClass)
	}
}

const good = `apiVersion: gatecheck.dev/v1alpha1
kind: ImplementationProfile
name: example
gatewayClass: {name: example, controllerName: example.com/gateway}
install: {kind: manifests, manifests: ["*.yaml"]}
conformance:
  profiles: [GATEWAY-HTTP]
  report: {organization: o, project: p, url: u, version: v, contact: [c]}
`

func TestLoadErrorsNameTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, edit, want string
	}{
		{"valid", "", ""},
		{"missing class", "gatewayClass: {name: example, controllerName: example.com/gateway}", "gatewayClass.name: required"},
		{"unknown install kind", "install: {kind: manifests, manifests: [\"*.yaml\"]}", `install.kind: unknown "kustomize"`},
		{"helm without chart", "install: {kind: manifests, manifests: [\"*.yaml\"]}", "install.helm.chart: required"},
		{"unknown field", "name: example", `unknown field "nmae"`},
		{"bad profile", "profiles: [GATEWAY-HTTP]", `conformance.profiles[0]: unknown profile "GATEWAY-HTTPS"`},
		{"report incomplete", "report: {organization: o, project: p, url: u, version: v, contact: [c]}", "conformance.report"},
		{"reach selector malformed", "contact: [c]}\n", `reach.service.selector "app in (a"`},
		{"reach namespace malformed", "contact: [c]}\n", `reach.service.namespace "Envoy_System"`},
		{"reach selector for another controller", "contact: [c]}\n", ""},
	}
	replacement := map[string]string{
		"missing class":             "gatewayClass: {controllerName: example.com/gateway}",
		"unknown install kind":      "install: {kind: kustomize}",
		"helm without chart":        "install: {kind: helm, helm: {release: r, namespace: n}}",
		"unknown field":             "nmae: example",
		"bad profile":               "profiles: [GATEWAY-HTTPS]",
		"report incomplete":         "report: {organization: o}",
		"reach selector malformed":  "contact: [c]}\nreach: {mode: port-forward, service: {selector: \"app in (a\"}}\n",
		"reach namespace malformed": "contact: [c]}\nreach: {mode: nodeport, service: {namespace: Envoy_System}}\n",
		"reach selector for another controller": "contact: [c]}\nreach: {mode: port-forward, service: {namespace: envoy-gateway-system, " +
			"selector: \"gateway.envoyproxy.io/owning-gateway-name={name},gateway.envoyproxy.io/owning-gateway-namespace={namespace}\"}}\n",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			body := good
			if tc.edit != "" {
				body = strings.Replace(good, tc.edit, replacement[tc.name], 1)
			}
			path := filepath.Join(dir, "profile.yaml")
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load() = %v; want error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file %s", err, path)
			}
		})
	}
}

func TestManifestFilesNamesAnEmptyGlob(t *testing.T) {
	t.Parallel()
	p := &Profile{Dir: t.TempDir(), Install: Install{Kind: InstallManifests, Manifests: []string{"nothing/*.yaml"}}}
	_, err := p.ManifestFiles()
	if err == nil || !strings.Contains(err.Error(), `install.manifests[0] "nothing/*.yaml": matches no file`) {
		t.Fatalf("ManifestFiles() = %v; want an error naming install.manifests[0]", err)
	}
}

func TestFindUnknownListsAvailable(t *testing.T) {
	t.Parallel()
	_, err := Find("..", "nosuch")
	if err == nil || !strings.Contains(err.Error(), "available: reference") {
		t.Fatalf("Find(nosuch) = %v; want an error listing available profiles", err)
	}
}

// The reference profile's readiness checks must name objects its manifests create, or every
// run waits out the timeout.
func TestReferenceReadinessMatchesManifests(t *testing.T) {
	t.Parallel()
	p, err := Find("..", "reference")
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.ManifestFiles()
	if err != nil {
		t.Fatal(err)
	}
	var all string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	for _, d := range p.Readiness.Deployments {
		if !strings.Contains(all, "kind: Deployment") || !strings.Contains(all, "name: "+d.Name) || !strings.Contains(all, "namespace: "+d.Namespace) {
			t.Errorf("readiness.deployments %s/%s: no such Deployment in %v", d.Namespace, d.Name, files)
		}
	}
	if !strings.Contains(all, "name: "+p.GatewayClass.Name) || !strings.Contains(all, "controllerName: "+p.GatewayClass.ControllerName) {
		t.Errorf("gatewayClass %s (%s) is not in the reference manifests", p.GatewayClass.Name, p.GatewayClass.ControllerName)
	}
}

func TestReachServiceResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		svc           ReachService
		wantNS, want  string
		wantErrSubstr string
	}{
		{"defaults: GEP-1762 label in the Gateway's namespace", ReachService{}, "team-a", "gateway.networking.k8s.io/gateway-name=web", ""},
		{"data plane in the controller's namespace", ReachService{Namespace: "envoy-gateway-system",
			Selector: "gateway.envoyproxy.io/owning-gateway-name={name},gateway.envoyproxy.io/owning-gateway-namespace={namespace}"},
			"envoy-gateway-system", "gateway.envoyproxy.io/owning-gateway-name=web,gateway.envoyproxy.io/owning-gateway-namespace=team-a", ""},
		{"namespace from a pattern", ReachService{Namespace: "{namespace}-infra"}, "team-a-infra", "gateway.networking.k8s.io/gateway-name=web", ""},
		{"selector matching everything", ReachService{Selector: " "}, "", "", "selects every Service"},
		{"bad selector", ReachService{Selector: "a=={name"}, "", "", `reach.service.selector "a=={name"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns, sel, err := tc.svc.Resolve("team-a", "web")
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("Resolve() error = %v; want one containing %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() = %v", err)
			}
			if ns != tc.wantNS || sel.String() != tc.want {
				t.Errorf("Resolve() = %q, %q; want %q, %q", ns, sel, tc.wantNS, tc.want)
			}
		})
	}
}
