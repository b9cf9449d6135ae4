package impls

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
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
		{"already installed", "install: {kind: manifests, manifests: [\"*.yaml\"]}", ""},
		{"already installed with manifests", "install: {kind: manifests, manifests: [\"*.yaml\"]}", "install: kind none installs nothing"},
	}
	replacement := map[string]string{
		"missing class":                    "gatewayClass: {controllerName: example.com/gateway}",
		"unknown install kind":             "install: {kind: kustomize}",
		"helm without chart":               "install: {kind: helm, helm: {release: r, namespace: n}}",
		"unknown field":                    "nmae: example",
		"already installed":                "install: {kind: none}",
		"already installed with manifests": "install: {kind: none, manifests: [\"*.yaml\"]}",
		"bad profile":                      "profiles: [GATEWAY-HTTPS]",
		"report incomplete":                "report: {organization: o}",
		"reach selector malformed":         "contact: [c]}\nreach: {mode: port-forward, service: {selector: \"app in (a\"}}\n",
		"reach namespace malformed":        "contact: [c]}\nreach: {mode: nodeport, service: {namespace: Envoy_System}}\n",
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

// suiteOptionsProfile is good with conformance fields added, written to a fresh directory
// together with files (name -> content); it returns the profile's path.
func suiteOptionsProfile(t *testing.T, fields string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.Replace(good, "  profiles: [GATEWAY-HTTP]\n", "  profiles: [GATEWAY-HTTP]\n"+fields, 1)
	path := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSuiteOptionsLoad(t *testing.T) {
	t.Parallel()
	path := suiteOptionsProfile(t, `  runTest: HTTPRouteWeight
  skipTests: [HTTPRouteMultipleGateways]
  mode: gateway-ambient
  skipProvisionalTests: true
  allowCrdsMismatch: true
  usableAddress: 10.96.0.200
  unusableAddress: unusable.example.com
  namespaceLabels: {istio.io/dataplane-mode: ambient, team: edge}
  timeoutConfig: {MaxTimeToConsistency: 1m, GatewayMustHaveAddress: 300s, RequiredConsecutiveSuccesses: 5, DefaultPollInterval: "2s"}
  optionsFile: conf/options.yaml
`, map[string]string{"conf/options.yaml": "meshName: mesh\ndisableParallelTests: true\nnamespaceAnnotations: {a: b}\n"})
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load() = %v; want nil", err)
	}
	o := p.Conformance.SuiteOptions
	if got, want := o.TimeoutOverrides(), "DefaultPollInterval:2;GatewayMustHaveAddress:300;MaxTimeToConsistency:60;RequiredConsecutiveSuccesses:5"; got != want {
		t.Errorf("TimeoutOverrides() = %q; want %q", got, want)
	}
	if got, want := o.NamespaceLabelsFlag(), "istio.io/dataplane-mode=ambient,team=edge"; got != want {
		t.Errorf("NamespaceLabelsFlag() = %q; want %q", got, want)
	}
	if got, want := o.OptionsPath(p.Dir), filepath.Join(filepath.Dir(path), "conf", "options.yaml"); got != want || !filepath.IsAbs(got) {
		t.Errorf("OptionsPath() = %q; want %q (absolute, relative to the profile's directory)", got, want)
	}
	if o.RunTest != "HTTPRouteWeight" || o.Mode != "gateway-ambient" || !o.SkipProvisionalTests || !o.AllowCRDsMismatch ||
		o.UsableAddress != "10.96.0.200" || o.UnusableAddress != "unusable.example.com" {
		t.Errorf("SuiteOptions = %+v; want every field as written", o)
	}
}

func TestSuiteOptionsErrorsNameTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, fields string
		files        map[string]string
		want         string
	}{
		{"run-test not a test name", "  runTest: httproute weight\n", nil, `conformance.runTest: "httproute weight" is not an upstream test name`},
		{"skip-tests not a test name", "  skipTests: [HTTPRoute-Weight]\n", nil, `conformance.skipTests[0]: "HTTPRoute-Weight" is not an upstream test name`},
		{"run-test also skipped", "  runTest: HTTPRouteWeight\n  skipTests: [HTTPRouteWeight]\n", nil, `conformance.skipTests[0]: "HTTPRouteWeight" is also conformance.runTest`},
		{"mode", "  mode: Default_Mode\n", nil, `conformance.mode: "Default_Mode"`},
		{"usable address", "  usableAddress: \"not an address\"\n", nil, `conformance.usableAddress: "not an address" is neither an IP address nor a DNS hostname`},
		{"same address twice", "  usableAddress: 10.0.0.1\n  unusableAddress: 10.0.0.1\n", nil, `conformance.unusableAddress: "10.0.0.1" is also conformance.usableAddress`},
		{"namespace label key", "  namespaceLabels: {\"bad key\": x}\n", nil, `conformance.namespaceLabels: key "bad key"`},
		{"namespace label value", "  namespaceLabels: {team: \"a,b=c\"}\n", nil, `conformance.namespaceLabels[team]: value "a,b=c"`},
		{"unknown timeout", "  timeoutConfig: {MaxTimeToConsistancy: 60s}\n", nil, `conformance.timeoutConfig: unknown timeout "MaxTimeToConsistancy" (the suite would ignore it; known: `},
		{"timeout not whole seconds", "  timeoutConfig: {MaxTimeToConsistency: 1500ms}\n", nil, `conformance.timeoutConfig.MaxTimeToConsistency: "1500ms": want whole seconds`},
		{"timeout not a duration", "  timeoutConfig: {MaxTimeToConsistency: soon}\n", nil, `conformance.timeoutConfig.MaxTimeToConsistency: "soon": want a duration`},
		{"timeout bare number", "  timeoutConfig: {MaxTimeToConsistency: 60}\n", nil, `conformance.timeoutConfig.MaxTimeToConsistency: "60": want a duration`},
		{"count zero", "  timeoutConfig: {RequiredConsecutiveSuccesses: 0}\n", nil, `conformance.timeoutConfig.RequiredConsecutiveSuccesses: "0": want a whole count of at least 1`},
		{"parallel negative", "  parallel: -1\n", nil, `conformance.parallel: -1: want 1 to 64 (0 or absent: go test's default)`},
		{"parallel too many", "  parallel: 800\n", nil, `conformance.parallel: 800: want 1 to 64`},
		{"parallel not a number", "  parallel: lots\n", nil, `parallel`},
		{"options file missing", "  optionsFile: options.yaml\n", nil, `conformance.optionsFile "options.yaml": open `},
		{"options file unknown key", "  optionsFile: options.yaml\n", map[string]string{"options.yaml": "meshname: m\n"},
			`conformance.optionsFile "options.yaml": unknown key "meshname"`},
		{"options file key the profile sets", "  optionsFile: options.yaml\n", map[string]string{"options.yaml": "mode: other\n"},
			`conformance.optionsFile "options.yaml": key "mode": set it in the profile (conformance.mode)`},
		{"options file not YAML", "  optionsFile: options.yaml\n", map[string]string{"options.yaml": "- a\n- b\n"}, `conformance.optionsFile "options.yaml" (`},
		{"old timeoutOverrides field", "  timeoutOverrides: \"MaxTimeToConsistency:60\"\n", nil, `unknown field "timeoutOverrides"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := suiteOptionsProfile(t, tc.fields, tc.files)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// The upstream parser ignores names it does not know; TimeoutNames must list exactly those it
// applies (asked of the pinned parser itself), among them the ones the field notes rely on.
func TestTimeoutNames(t *testing.T) {
	t.Parallel()
	names := TimeoutNames()
	for _, want := range []string{"MaxTimeToConsistency", "GatewayMustHaveAddress", "NamespacesMustBeReady", "RequiredConsecutiveSuccesses", "DefaultTestTimeout"} {
		if !slices.Contains(names, want) {
			t.Errorf("TimeoutNames() = %q; want it to contain %s", names, want)
		}
	}
	if len(names) < 20 {
		t.Errorf("TimeoutNames() = %d names %q; v1.6.3 parses over 20", len(names), names)
	}
}

// OptionsFileKeys must be exactly the JSON keys of the pinned suite.ConfigurableOptions, so
// that a valid options file is never refused and a misspelt key always is.
func TestOptionsFileKeysMatchUpstream(t *testing.T) {
	t.Parallel()
	var want []string
	typ := reflect.TypeFor[suite.ConfigurableOptions]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	var got []string
	for k := range OptionsFileKeys {
		got = append(got, k)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OptionsFileKeys vs suite.ConfigurableOptions JSON keys (-upstream +ours):\n%s", diff)
	}
}

func TestCRDPolicyErrorsNameTheField(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, crds, want string }{
		{"default", "", ""},
		{"skip", "crds: {policy: skip}\n", ""},
		{"require a version and channel", "crds: {policy: require, version: v1.5.0, channel: experimental}\n", ""},
		{"unknown policy", "crds: {policy: keep}\n", `crds.policy: unknown "keep" (want install, skip or require)`},
		{"unknown channel", "crds: {policy: require, channel: beta}\n", `crds.channel: unknown "beta"`},
		{"malformed version", "crds: {policy: require, version: 1.6}\n", `crds.version: "1.6" is not a bundle version`},
		{"version without require", "crds: {version: v1.6.3}\n", `crds.version: only policy require reads it`},
		{"unknown field", "crds: {polcy: skip}\n", `unknown field "polcy"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "profile.yaml")
			if err := os.WriteFile(path, []byte(good+tc.crds), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Load(path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load: %v; want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Load: %v; want an error containing %q", err, tc.want)
			case tc.name == "require a version and channel" && (p.CRDs != CRDs{Policy: CRDsRequire, Version: "v1.5.0", Channel: "experimental"}):
				t.Fatalf("crds = %+v; want require v1.5.0 experimental", p.CRDs)
			}
		})
	}
}
