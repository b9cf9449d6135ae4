package runner

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/gateway-api/conformance/utils/flags"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

func TestSelectSuites(t *testing.T) {
	t.Parallel()
	got, err := SelectSuites("all")
	if want := "conformance,canary,grpc,mirror,migration,propagation,sidecar,tcp,udp"; err != nil || strings.Join(got, ",") != want {
		t.Fatalf("SelectSuites(all) = %v, %v; want %s", got, err, want)
	}
	got, err = SelectSuites("mirror, conformance")
	if err != nil || strings.Join(got, ",") != "mirror,conformance" {
		t.Fatalf("SelectSuites(mirror, conformance) = %v, %v", got, err)
	}
	if _, err := SelectSuites("canary,bogus"); err == nil || !strings.Contains(err.Error(), `unknown suite "bogus" (known: conformance, canary, grpc,`) {
		t.Fatalf("SelectSuites(bogus) = %v; want an error listing the known suites", err)
	}
	if _, err := SelectSuites(" , "); err == nil {
		t.Fatal("SelectSuites(\" , \") = nil error; want one saying it names no suite")
	}
}

func TestConformanceArgs(t *testing.T) {
	t.Parallel()
	p := &impls.Profile{GatewayClass: impls.GatewayClass{Name: "gc"}, Conformance: impls.Conformance{
		Profiles: []string{"GATEWAY-HTTP", "GATEWAY-GRPC"}, SkipTests: []string{"A", "B"},
		Report: impls.ReportIdentity{Organization: "o", Project: "p", URL: "u", Version: "v", Contact: []string{"c1", "c2"}},
	}}
	got := strings.Join(conformanceArgs(p, "/r.yaml", false), " ")
	for _, want := range []string{"--gateway-class=gc", "--report-output=/r.yaml", "--conformance-profiles=GATEWAY-HTTP,GATEWAY-GRPC",
		"--skip-tests=A,B", "--contact=c1,c2", "-test.run ^TestConformance$"} {
		if !strings.Contains(got, want) {
			t.Errorf("conformanceArgs = %q; want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "--supported-features") {
		t.Errorf("conformanceArgs = %q; want no --supported-features when the profile lists none (the suite reads the GatewayClass)", got)
	}
	// Options the profile leaves unset are not passed: the suite's defaults (or the options
	// file) apply.
	for _, flag := range []string{"--run-test", "--mode", "--skip-provisional-tests", "--allow-crds-mismatch", "--usable-address",
		"--unusable-address", "--namespace-labels", "--timeout-config-overrides", "--conformance-options-file", "-test.parallel"} {
		if strings.Contains(got, flag) {
			t.Errorf("conformanceArgs = %q; want no %s when the profile does not set it", got, flag)
		}
	}
}

// Every upstream suite option a profile sets reaches the suite as the v1.6.3 flag, in the
// format that flag parses (utils/flags/flags.go), from a profile loaded and validated as a
// user's would be.
func TestConformanceArgsSuiteOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "options.yaml"), []byte("meshName: m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	profile := `apiVersion: gatecheck.dev/v1alpha1
kind: ImplementationProfile
name: example
gatewayClass: {name: gc, controllerName: example.com/gateway}
install: {kind: manifests, manifests: ["*.yaml"]}
conformance:
  profiles: [GATEWAY-HTTP]
  report: {organization: o, project: p, url: u, version: v, contact: [c]}
  runTest: HTTPRouteWeight
  mode: ambient
  skipProvisionalTests: true
  allowCrdsMismatch: true
  usableAddress: 10.96.0.200
  unusableAddress: 10.96.0.201
  namespaceLabels: {team: edge, istio.io/dataplane-mode: ambient}
  timeoutConfig: {MaxTimeToConsistency: 2m, RequiredConsecutiveSuccesses: 5}
  optionsFile: options.yaml
  parallel: 3
`
	path := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(path, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := impls.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	args := conformanceArgs(p, "/r.yaml", false)
	if !strings.Contains(strings.Join(args, " "), "-test.parallel 3 ") {
		t.Errorf("conformanceArgs = %q; want -test.parallel 3 (conformance.parallel)", args)
	}
	for _, want := range []string{
		"--run-test=HTTPRouteWeight",
		"--mode=ambient",
		"--skip-provisional-tests=true",
		"--allow-crds-mismatch=true",
		"--usable-address=10.96.0.200",
		"--unusable-address=10.96.0.201",
		"--namespace-labels=istio.io/dataplane-mode=ambient,team=edge",
		"--timeout-config-overrides=MaxTimeToConsistency:120;RequiredConsecutiveSuccesses:5",
		"--conformance-options-file=" + filepath.Join(dir, "options.yaml"),
	} {
		if !slices.Contains(args, want) {
			t.Errorf("conformanceArgs = %q; want the argument %q", args, want)
		}
	}

	// The pinned suite's own flags parse them into the options the profile says. The flags
	// live in the process's flag set, so this part runs once, not in parallel with itself.
	var upstream []string
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			upstream = append(upstream, a)
		}
	}
	if err := flag.CommandLine.Parse(upstream); err != nil {
		t.Fatalf("the upstream suite's flags refuse %q: %v", upstream, err)
	}
	var o suite.ConfigurableOptions
	flags.ApplyAll(&o)
	if o.RunTest != "HTTPRouteWeight" || o.Mode != "ambient" || !o.SkipProvisionalTests || !o.AllowCRDsMismatch ||
		o.TimeoutConfig.MaxTimeToConsistency != 2*time.Minute || o.TimeoutConfig.RequiredConsecutiveSuccesses != 5 ||
		!cmp.Equal(o.NamespaceLabels, map[string]string{"team": "edge", "istio.io/dataplane-mode": "ambient"}) ||
		len(o.UsableNetworkAddresses) != 1 || o.UsableNetworkAddresses[0].Value != "10.96.0.200" ||
		len(o.UnusableNetworkAddresses) != 1 || o.UnusableNetworkAddresses[0].Value != "10.96.0.201" ||
		*flags.ConformanceOptionsFile != filepath.Join(dir, "options.yaml") || o.GatewayClassName != "gc" {
		t.Errorf("the upstream suite read %q as %+v (options file %q); want every option the profile sets", upstream, o, *flags.ConformanceOptionsFile)
	}
}

func gc(controller string, gen int64, conds ...map[string]any) *unstructured.Unstructured {
	var cs []any
	for _, c := range conds {
		cs = append(cs, c)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "gc", "generation": gen},
		"spec":     map[string]any{"controllerName": controller},
		"status":   map[string]any{"conditions": cs},
	}}
	return u
}

func TestGatewayClassState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		obj      *unstructured.Unstructured
		done     bool
		errMatch string
	}{
		{"accepted", gc("x/y", 2, map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": int64(2)}), true, ""},
		{"stale", gc("x/y", 3, map[string]any{"type": "Accepted", "status": "True", "observedGeneration": int64(2)}), false, ""},
		{"no condition", gc("x/y", 1), false, ""},
		{"rejected", gc("x/y", 1, map[string]any{"type": "Accepted", "status": "False", "reason": "InvalidParameters", "message": "bad", "observedGeneration": int64(1)}), false, "reason InvalidParameters"},
		{"other controller", gc("a/b", 1), false, `spec.controllerName is "a/b"; the profile says "x/y"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done, _, err := gatewayClassState(tc.obj, "x/y")
			if done != tc.done {
				t.Errorf("done = %v; want %v", done, tc.done)
			}
			if (tc.errMatch == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.errMatch)) {
				t.Errorf("err = %v; want match %q", err, tc.errMatch)
			}
		})
	}
}

func TestProgressFilters(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newConformanceConsole(func() time.Time { return now })
	// The first test's start is the end of the suite's setup: the lanes start then.
	var firsts []string
	c.onFirstTest = func() { firsts = append(firsts, c.running) }
	var printed []string
	for _, step := range []struct {
		line    string
		advance time.Duration
	}{
		{"=== RUN   TestConformance", 0},
		{"=== RUN   TestConformance/HTTPRouteWeight", time.Second},
		{"=== RUN   TestConformance/HTTPRouteWeight/0_request", time.Second},
		{"    weight.go:12: sending 500 requests", 20 * time.Second},
		{"    weight.go:40: done", time.Second},
		{"=== RUN   TestConformance/MeshBasic", 0},
		{"=== RUN   TestConformance/BackendTLSPolicy", 0},
		{"=== PAUSE TestConformance/BackendTLSPolicy", 0},
		{"=== RUN   TestConformance/GatewayInvalidRouteKind", 0},
		{"=== PAUSE TestConformance/GatewayInvalidRouteKind", 0},
		{"=== RUN   TestConformance/HTTPRouteMatching", time.Second},
		{"    matching.go:9: sending", 20 * time.Second},
		{"=== CONT  TestConformance/BackendTLSPolicy", 0},
		{"    backendtls.go:30: waiting", 20 * time.Second},
		{"--- FAIL: TestConformance (30.0s)", time.Second},
		{"    --- PASS: TestConformance/HTTPRouteWeight (12.3s)", 0},
		{"        --- PASS: TestConformance/HTTPRouteWeight/0_request (1s)", 0},
		{"    --- SKIP: TestConformance/MeshBasic (0.0s)", 0},
		{"    --- FAIL: TestConformance/HTTPRouteMatching (5.0s)", 0},
	} {
		now = now.Add(step.advance)
		printed = append(printed, c.line(step.line)...)
	}
	if !slices.Equal(firsts, []string{"HTTPRouteWeight"}) {
		t.Errorf("onFirstTest called when %q ran; want once, when the first test (HTTPRouteWeight) started", firsts)
	}
	want := []string{
		"1 test started in 22s; running HTTPRouteWeight",
		// The serial tests are done; the paused ones run together, and Go names only the
		// ones it resumes.
		"5 tests started in 44s; running HTTPRouteMatching",
		"5 tests started in 1m4s; parallel tests: 1 of 2 resumed, latest BackendTLSPolicy",
		"--- FAIL: TestConformance/HTTPRouteMatching (5.0s)",
	}
	// Go prints the parent's verdict before the subtests', so the counts are complete only at
	// the end of the output, when runStreaming flushes.
	printed = append(printed, c.flush()...)
	want = append(want, "3 tests: 1 passed, 1 failed, 1 skipped (features not claimed or not in the profiles) in 1m5s")
	if diff := cmp.Diff(want, printed); diff != "" {
		t.Errorf("conformance console (-want +got):\n%s", diff)
	}
	keep := keepLines(ginkgoProgress())
	var kept []string
	for _, l := range []string{"------------------------------", "Canary splits 90/10 [canary]", "/work/x_test.go:12", "  STEP: sending requests",
		"• [1.0 seconds]", "------------------------------", "• [FAILED] [2.0 seconds]", "Ran 2 of 2 Specs"} {
		kept = append(kept, keep.line(l)...)
	}
	if got, want := strings.Join(kept, "|"), "Canary splits 90/10 [canary]|• [FAILED] [2.0 seconds]|Ran 2 of 2 Specs"; got != want {
		t.Errorf("ginkgoProgress kept %q; want %q", got, want)
	}
}

type fakeCluster struct {
	upErr      error
	up, downed int
}

func (f *fakeCluster) Name() string                                      { return "fake" }
func (f *fakeCluster) Up(context.Context) error                          { f.up++; return f.upErr }
func (f *fakeCluster) Down(context.Context) error                        { f.downed++; return nil }
func (f *fakeCluster) Kubeconfig() string                                { return "/nonexistent" }
func (f *fakeCluster) LoadImages(context.Context, []string) error        { return nil }
func (f *fakeCluster) CanLoadImages() bool                               { return true }
func (f *fakeCluster) Owned() bool                                       { return true }
func (f *fakeCluster) Build(context.Context, []string) ([]string, error) { return nil, nil }

func TestRunTearsDownWhenClusterFails(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{upErr: errors.New("no kubelet")}
	_, err := Run(context.Background(), fc, fc, Options{OutDir: t.TempDir(), Profile: &impls.Profile{Name: "x"}})
	if err == nil || !strings.Contains(err.Error(), "cluster fake: no kubelet") {
		t.Fatalf("Run() = %v; want the cluster error", err)
	}
	if fc.downed != 1 {
		t.Fatalf("Down called %d times; want 1 (a failed run cleans up)", fc.downed)
	}
}

func TestRunThatStopsEarlyStillReports(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{upErr: errors.New("no kubelet")}
	dir := t.TempDir()
	res, _ := Run(context.Background(), fc, fc, Options{OutDir: dir, Profile: &impls.Profile{Name: "x"}})
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("no report.json after an early failure: %v (files %v)", err, res.Files)
	}
	if !strings.Contains(string(data), "no kubelet") {
		t.Fatalf("report.json does not say why the run stopped:\n%s", data)
	}
}

func TestRunKeepSkipsTeardown(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{upErr: errors.New("boom")}
	_, _ = Run(context.Background(), fc, fc, Options{OutDir: t.TempDir(), Profile: &impls.Profile{Name: "x"}, Keep: true})
	if fc.downed != 0 {
		t.Fatalf("Down called %d times with Keep; want 0", fc.downed)
	}
}

func TestNeededImages(t *testing.T) {
	t.Parallel()
	got := neededImages([]string{"controller", "proxy"}, []string{"conformance", "canary", "sidecar"})
	if want := "controller,proxy,echo-basic,coredns,echo-backend"; strings.Join(got, ",") != want {
		t.Fatalf("neededImages = %v; want %s", got, want)
	}
	if got := neededImages(nil, []string{"mirror"}); strings.Join(got, ",") != "echo-backend" {
		t.Fatalf("neededImages(mirror) = %v; want echo-backend", got)
	}
	if got := neededImages(nil, []string{"sidecar"}); strings.Join(got, ",") != "echo-backend" {
		t.Fatalf("neededImages(sidecar) = %v; want echo-backend (the mesh spec's proxy is echo-backend's forward-proxy mode)", got)
	}
}

// The one suite binary carries every suite's tree; a suite's report must list only its own
// specs (and suite-level nodes), not the others' as skipped, and of a part (alongside, quiet)
// only the part's.
func TestOnlySuiteKeepsItsOwnSpecs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		part suitePart
		want []string
	}{
		{wholeSuite, []string{"Weighted split 90/10", "Mirror isolation", "[BeforeSuite]"}},
		{alongsidePart, []string{"Weighted split 90/10", "[BeforeSuite]"}},
		{quietPart, []string{"Mirror isolation", "[BeforeSuite]"}},
	} {
		rep := &model.Report{Suites: []model.Suite{{Name: "gatecheck canary", Specs: []model.Spec{
			{Name: "Weighted split 90/10", NodeType: "It", Labels: []string{"canary", "feature:weight"}, Outcome: model.OutcomePassed},
			{Name: "Mirror isolation", NodeType: "It", Labels: []string{"canary", suiteenv.QuietLabel}, Outcome: model.OutcomePassed},
			{Name: "TCPRoute weights 70/30", NodeType: "It", Labels: []string{"tcp", "feature:weight"}, Outcome: model.OutcomeSkipped},
			{Name: "Native sidecar start order", Labels: []string{"sidecar"}, Outcome: model.OutcomeSkipped},
			{Name: "[BeforeSuite]", NodeType: "BeforeSuite", Outcome: model.OutcomeFailed},
		}}}}
		onlySuite(rep, "canary", tc.part)
		var got []string
		for _, sp := range rep.Suites[0].Specs {
			got = append(got, sp.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("part %q: specs kept = %q; want %q", tc.part.name(), got, tc.want)
		}
	}
}

func TestJoinFilters(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"", ""}, ""},
		{[]string{"negative", ""}, "negative"},
		{[]string{"", "!quiet"}, "!quiet"},
		{[]string{"a || b", "quiet"}, "(a || b) && (quiet)"},
	} {
		if got := joinFilters(tt.in...); got != tt.want {
			t.Errorf("joinFilters(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// A suite run in two parts is one suite in the report: both parts' specs, failed when either
// part failed, from the earlier start to the later end.
func TestMergeParts(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := &model.Report{Suites: []model.Suite{{Name: "gatecheck udp", Succeeded: true, Start: t0, End: t0.Add(10 * time.Second), DurationSeconds: 10,
		NotClaimed: []string{"UDPRoute"}, Specs: []model.Spec{{Name: "weights"}}}}}
	b := &model.Report{Suites: []model.Suite{{Name: "gatecheck udp", Succeeded: false, Start: t0.Add(time.Minute), End: t0.Add(70 * time.Second), DurationSeconds: 10,
		NotClaimed: []string{"UDPRoute"}, FailureReasons: []string{"loss"}, Specs: []model.Spec{{Name: "loss"}}}}}
	got := mergeParts(a, b)
	want := []model.Suite{{Name: "gatecheck udp", Succeeded: false, Start: t0, End: t0.Add(70 * time.Second), DurationSeconds: 20,
		NotClaimed: []string{"UDPRoute"}, FailureReasons: []string{"loss"}, Specs: []model.Spec{{Name: "weights"}, {Name: "loss"}}}}
	if diff := cmp.Diff(want, got.Suites); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
	if len(a.Suites[0].Specs) != 1 {
		t.Errorf("mergeParts changed its first argument: %d specs", len(a.Suites[0].Specs))
	}
	if mergeParts(nil, b) != b || mergeParts(a, nil) != a {
		t.Error("a missing part must leave the other as it is")
	}
}

// install.kind none: the implementation was installed by someone else; gatecheck installs
// nothing and removes nothing (no API call is made: the installer has no client config).
func TestInstallKindNoneTouchesNothing(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	ii := &implInstaller{profile: &impls.Profile{Name: "preinstalled", Install: impls.Install{Kind: impls.InstallNone}}, out: &out}
	if err := ii.install(context.Background()); err != nil {
		t.Fatalf("install: %v", err)
	}
	if !strings.Contains(out.String(), "already installed") {
		t.Errorf("install said %q; want it to say the implementation is already installed", out.String())
	}
	ii.applied = []install.Object{{}} // even with something recorded, none removes nothing
	if err := ii.uninstall(context.Background()); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
}
