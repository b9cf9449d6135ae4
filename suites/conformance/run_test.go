package conformance

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/gateway-api/pkg/features"

	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
)

// The fake suite runs the real Run (suite construction, Hook, plan, wrapped tests, report) on a
// fake cluster: a fake client holding one Gateway API CRD with the bundle annotations, and a
// profile without the Gateway feature, so Setup has no base manifests to wait for. It runs in a
// child process (this test binary again) because some of its tests fail on purpose and one
// blocks until the parent interrupts it.
const (
	envFakeSuite  = "GATECHECK_FAKE_SUITE"  // set: TestFakeSuite runs the fake suite
	envFakeBlock  = "GATECHECK_FAKE_BLOCK"  // set: FakeBlock blocks until killed
	envFakeReport = "GATECHECK_FAKE_REPORT" // the ConformanceReport path
	envFakeAllOK  = "GATECHECK_FAKE_ALL_OK" // set: FakeFail passes
)

var fakeProfile = suite.ConformanceProfile{
	Name:             "FAKE-HTTP",
	CoreFeatures:     sets.New(features.SupportHTTPRoute),
	ExtendedFeatures: sets.New(features.SupportHTTPRouteResponseHeaderModification, features.SupportHTTPRouteQueryParamMatching),
}

func init() {
	suite.RegisterConformanceProfile(fakeProfile)
	profiles[fakeProfile.Name] = fakeProfile
}

func fakeTests() []suite.ConformanceTest {
	pass := func(t *testing.T, _ *suite.ConformanceTestSuite) { time.Sleep(20 * time.Millisecond) }
	http := []features.FeatureName{features.SupportHTTPRoute}
	return []suite.ConformanceTest{
		{ShortName: "FakePass", Description: "passes", Features: http, Test: pass},
		{ShortName: "FakeFail", Features: http, Test: func(t *testing.T, _ *suite.ConformanceTestSuite) {
			if os.Getenv(envFakeAllOK) == "" {
				t.Fatal("Error: backend answered 503; want 200")
			}
		}},
		{ShortName: "FakeUnsupported", Features: []features.FeatureName{features.SupportHTTPRoute, features.SupportHTTPRouteQueryParamMatching}, Test: pass},
		{ShortName: "FakeSkipped", Features: http, Test: pass},
		{ShortName: "FakeExtended", Features: []features.FeatureName{features.SupportHTTPRoute, features.SupportHTTPRouteResponseHeaderModification}, Test: pass},
		{ShortName: "FakeProvisional", Features: http, Provisional: true, Test: pass},
		{ShortName: "FakeBlock", Features: http, Test: func(t *testing.T, _ *suite.ConformanceTestSuite) {
			if os.Getenv(envFakeBlock) != "" {
				time.Sleep(time.Minute)
			}
		}},
		{ShortName: "FakeParallel", Features: http, Parallel: true, Test: pass},
		{ShortName: "FakeAfter", Features: http, Test: pass},
	}
}

// TestFakeSuite is the child process's entry point; on its own it skips.
func TestFakeSuite(t *testing.T) {
	if os.Getenv(envFakeSuite) == "" {
		t.Skip("helper: runs the fake suite in a child process of the tests below")
	}
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "httproutes.gateway.networking.k8s.io",
		Annotations: map[string]string{consts.BundleVersionAnnotation: consts.BundleVersion, consts.ChannelAnnotation: "standard"}}}
	opts := suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName:    "fake",
			ReportOutputPath:    os.Getenv(envFakeReport),
			SupportedFeatures:   []features.FeatureName{features.SupportHTTPRoute, features.SupportHTTPRouteResponseHeaderModification},
			SkipTests:           []string{"FakeSkipped"},
			ConformanceProfiles: []suite.ConformanceProfileName{fakeProfile.Name},
			Implementation:      confv1.Implementation{Organization: "o", Project: "p", URL: "https://example.com", Version: "v1", Contact: []string{"@c"}},
		},
		Client:     fake.NewClientBuilder().WithScheme(scheme).WithObjects(crd).Build(),
		RestConfig: &rest.Config{Host: "http://127.0.0.1:1"},
	}
	rec, err := openRecorder(os.Getenv(EnvEvents))
	if err != nil {
		t.Fatal(err)
	}
	Run(t, opts, fakeTests(), rec)
}

// runFake runs the fake suite in a child process with env; interrupt, when set, is called with
// the events path and the process once it runs, and interrupts it.
func runFake(t *testing.T, env []string, interrupt func(events string, p *os.Process)) (events, report string, out []byte, err error) {
	dir := t.TempDir()
	events, report = filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "conformance-report.yaml")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFakeSuite$", "-test.v")
	cmd.Env = append(os.Environ(), append(env, envFakeSuite+"=1", EnvEvents+"="+events, envFakeReport+"="+report)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if interrupt != nil {
		interrupt(events, cmd.Process)
	}
	err = cmd.Wait()
	return events, report, buf.Bytes(), err
}

type result struct {
	Result     model.UpstreamResult
	SkipReason string
	Profiles   string
}

func results(u *model.Upstream) map[string]result {
	m := map[string]result{}
	for _, tt := range u.Tests {
		var ps []string
		for _, p := range tt.Profiles {
			ps = append(ps, p.Name+":"+p.Level)
		}
		m[tt.Name] = result{tt.Result, tt.SkipReason, strings.Join(ps, ",")}
	}
	return m
}

func TestRunRecordsEveryTestAndMatchesUpstreamReport(t *testing.T) {
	events, report, out, err := runFake(t, nil, nil)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("fake suite: got %v; want exit 1 (FakeFail fails)\n%s", err, out)
	}
	u, plan, err := ingest.ReadConformanceEvents(events)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]result{
		"FakePass":        {model.UpstreamPassed, "", "FAKE-HTTP:core"},
		"FakeFail":        {model.UpstreamFailed, "", "FAKE-HTTP:core"},
		"FakeUnsupported": {model.UpstreamSkipped, "suite does not support HTTPRouteQueryParamMatching", "FAKE-HTTP:extended"},
		"FakeSkipped":     {model.UpstreamSkipped, "test explicitly skipped", "FAKE-HTTP:core"},
		"FakeExtended":    {model.UpstreamPassed, "", "FAKE-HTTP:extended"},
		"FakeProvisional": {model.UpstreamPassed, "", "FAKE-HTTP:core"},
		"FakeBlock":       {model.UpstreamPassed, "", "FAKE-HTTP:core"},
		"FakeParallel":    {model.UpstreamPassed, "", "FAKE-HTTP:core"},
		"FakeAfter":       {model.UpstreamPassed, "", "FAKE-HTTP:core"},
	}
	if d := cmp.Diff(want, results(u)); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
	if u.Partial {
		t.Errorf("complete run recorded as partial: %s", u.Reason)
	}
	for _, tt := range u.Tests {
		ran := tt.Result == model.UpstreamPassed || tt.Result == model.UpstreamFailed
		if ran && (tt.Start.IsZero() || tt.DurationSeconds <= 0) {
			t.Errorf("%s: start %v, duration %v; want both set for a test that ran", tt.Name, tt.Start, tt.DurationSeconds)
		}
	}
	// The partial report built from a complete run's events must count as the suite's own.
	upstream, err := ingest.ReadConformanceFile(report)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ours, err := ingest.PartialConformance(plan, u, "standard", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	norm := func(c confv1.ConformanceReport) confv1.ConformanceReport {
		c.Date, c.GatewayAPIChannel = "", ""
		for i := range c.ProfileReports {
			c.ProfileReports[i].Summary = ""
		}
		slices.SortFunc(c.ProfileReports, func(a, b confv1.ProfileReport) int { return strings.Compare(a.Name, b.Name) })
		return c
	}
	if d := cmp.Diff(norm(upstream.Report), norm(ours.Report)); d != "" {
		t.Errorf("report built from events differs from the suite's (-suite +events):\n%s", d)
	}
	if !ours.Partial || !strings.HasPrefix(ours.Raw, model.PartialConformanceMarker) {
		t.Errorf("built report not marked partial: %.120q", ours.Raw)
	}
}

func TestRunInterruptedKeepsFinishedTests(t *testing.T) {
	events, report, out, err := runFake(t, []string{envFakeBlock + "=1"}, func(events string, p *os.Process) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(events)
			if bytes.Contains(b, []byte(`"event":"start","time":`)) && bytes.Contains(b, []byte(`"test":"FakeBlock"`)) {
				if err := p.Signal(syscall.SIGINT); err != nil {
					t.Error(err)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Error("FakeBlock never started")
		_ = p.Kill()
	})
	if err == nil {
		t.Fatalf("interrupted fake suite exited 0\n%s", out)
	}
	if _, serr := os.Stat(report); serr == nil {
		t.Errorf("interrupted suite wrote a ConformanceReport %s", report)
	}
	u, _, err := ingest.ReadConformanceEvents(events)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := results(u)
	for name, want := range map[string]model.UpstreamResult{
		"FakePass": model.UpstreamPassed, "FakeFail": model.UpstreamFailed, "FakeSkipped": model.UpstreamSkipped,
		"FakeBlock": model.UpstreamRunning, "FakeAfter": model.UpstreamNotStarted, "FakeParallel": model.UpstreamNotStarted,
	} {
		if got[name].Result != want {
			t.Errorf("%s: got %s; want %s", name, got[name].Result, want)
		}
	}
	if !u.Partial || !strings.Contains(u.Reason, "stopped before its end") {
		t.Errorf("interrupted run: partial %v, reason %q; want partial, stopped before its end", u.Partial, u.Reason)
	}
}

func TestPlanClassifiesAsTheSuiteDoes(t *testing.T) {
	t.Parallel()
	opts := suite.ConformanceOptions{ConfigurableOptions: suite.ConfigurableOptions{ConformanceProfiles: []suite.ConformanceProfileName{fakeProfile.Name}}}
	cases := []struct {
		name     string
		runTest  string
		skipProv bool
		test     string
		willRun  bool
		initial  string
	}{
		{name: "supported", test: "FakePass", willRun: true, initial: "SUCCEEDED"},
		{name: "unsupported feature", test: "FakeExtended", willRun: false, initial: "NOT_SUPPORTED"},
		{name: "skip-tests", test: "FakeSkipped", willRun: false, initial: "SKIPPED"},
		{name: "provisional skipped still runs", skipProv: true, test: "FakeProvisional", willRun: true, initial: "PROVISIONAL_SKIPPED"},
		{name: "run-test other", runTest: "FakePass", test: "FakeAfter", willRun: false, initial: "SKIPPED"},
		{name: "run-test ignores features", runTest: "FakeExtended", test: "FakeExtended", willRun: true, initial: "NOT_SUPPORTED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &suite.ConformanceTestSuite{
				SupportedFeatures: sets.New(features.SupportHTTPRoute),
				SkipTests:         sets.New("FakeSkipped"),
				RunTest:           c.runTest, SkipProvisionalTests: c.skipProv,
			}
			p := Plan(s, opts, fakeTests())
			i := slices.IndexFunc(p.Tests, func(pt model.UpstreamPlanTest) bool { return pt.Name == c.test })
			if i < 0 {
				t.Fatalf("%s not in plan", c.test)
			}
			if pt := p.Tests[i]; pt.WillRun != c.willRun || pt.Initial != c.initial {
				t.Errorf("%s: willRun %v initial %s (%s); want %v %s", c.test, pt.WillRun, pt.Initial, pt.SkipReason, c.willRun, c.initial)
			}
		})
	}
}
