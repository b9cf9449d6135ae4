package conformance

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/conformance/utils/tlog"
	"sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/reports/model"
)

// EnvEvents names the file the suite appends its events to (one JSON line per event, see
// model.UpstreamEvent); unset, no events are written.
const EnvEvents = model.UpstreamEventsEnv

// Test is the upstream suite with the upstream flags (conformance.DefaultOptions), run as
// conformance.RunConformanceWithOptions runs it, plus an event per test in the file named by
// $GATECHECK_CONFORMANCE_EVENTS. It is a plain function of a *testing.T so that it can run
// under `go test` (conformance_test.go) or from a binary that starts the testing package
// itself. Filter tests with the suite's own --run-test / --skip-tests flags, not `go test -run`.
func Test(t *testing.T) {
	if os.Getenv("KUBECONFIG") == "" {
		if _, err := os.Stat(os.ExpandEnv("$HOME/.kube/config")); err != nil {
			t.Fatal("no cluster: set KUBECONFIG to the cluster under test (gatecheck run does this)")
		}
	}
	opts := conformance.DefaultOptions(t)
	if opts.ReportOutputPath != "" && opts.Implementation.Validate() != nil {
		t.Fatal("--report-output needs --organization, --project, --url, --version and --contact (the implementation profile's `report` section)")
	}
	rec, err := openRecorder(os.Getenv(EnvEvents))
	if err != nil {
		t.Fatalf("%s: %v", EnvEvents, err)
	}
	if err := pushedImages(&opts, os.Getenv(imagemap.Env)); err != nil {
		t.Fatal(err)
	}
	Run(t, opts, tests.ConformanceTests, rec)
}

// pushedImages makes the suite's manifests name the images gatecheck pushed to a registry
// (--registry), given as imagemap.Env's value; "" leaves them as they are.
func pushedImages(opts *suite.ConformanceOptions, env string) error {
	images, err := imagemap.Parse(env)
	if err != nil || len(images) == 0 {
		return err
	}
	if opts.ManifestFS == nil {
		opts.ManifestFS = []fs.FS{&conformance.Manifests}
	}
	for i, f := range opts.ManifestFS {
		opts.ManifestFS[i] = images.FS(f)
	}
	return nil
}

// Run is conformance.RunConformanceWithOptions (v1.6.3) with each test wrapped so that rec
// records it: the plan before Setup, a start event when a test's body starts and an end event
// from the suite's Hook, which the suite calls in every test's Cleanup, skipped tests included.
// A nil rec records nothing.
func Run(t *testing.T, opts suite.ConformanceOptions, all []suite.ConformanceTest, rec *Recorder) {
	if err := opts.Implementation.Validate(); err != nil && opts.ReportOutputPath != "" {
		require.NoError(t, err, "supplied Implementation details are not valid")
	}
	if opts.ManifestFS == nil {
		opts.ManifestFS = []fs.FS{&conformance.Manifests}
	}
	t.Log("Running conformance tests with:")
	t.Logf("  GatewayClass: %s", opts.GatewayClassName)
	t.Logf("  Cleanup Base Resources: %t", opts.CleanupBaseResources)
	t.Logf("  Cleanup Test Resources: %t", opts.CleanupTestResources)
	t.Logf("  Debug: %t", opts.Debug)
	t.Logf("  Enable All Features: %t", opts.EnableAllSupportedFeatures)
	t.Logf("  Supported Features: %v", opts.SupportedFeatures)
	t.Logf("  ExemptFeatures: %v", opts.ExemptFeatures)
	t.Logf("  ConformanceProfiles: %v", opts.ConformanceProfiles)

	if hook := opts.Hook; rec != nil {
		opts.Hook = func(t *testing.T, test suite.ConformanceTest, s *suite.ConformanceTestSuite) {
			rec.end(t, test)
			if hook != nil {
				hook(t, test, s)
			}
		}
	}
	cSuite, err := suite.NewConformanceTestSuite(opts)
	require.NoError(t, err, "error initializing conformance suite")

	reportWritten := false
	if rec != nil {
		// Registered before the report's cleanup, so it runs after it.
		t.Cleanup(func() { rec.done(reportWritten, t.Failed()) })
	}
	if opts.ReportOutputPath != "" {
		t.Cleanup(func() {
			report, rErr := cSuite.Report()
			require.NoError(t, rErr, "error generating conformance profile report")
			raw, err := yaml.Marshal(*report)
			require.NoError(t, err, "error writing report")
			require.NoError(t, os.WriteFile(opts.ReportOutputPath, raw, 0o600), "error writing report")
			reportWritten = true
			t.Logf("Conformance report:\n%s", raw)
		})
	}
	if rec != nil {
		rec.plan(Plan(cSuite, opts, all))
		all = rec.wrap(all)
	}
	cSuite.Setup(t, all)
	require.NoError(t, cSuite.Run(t, all))
}

// Recorder appends events to a file, one JSON line per event, each with a single write, so the
// file is complete up to the last event whatever ends the process afterwards.
type Recorder struct {
	mu     sync.Mutex
	f      *os.File
	now    func() time.Time
	starts map[string]time.Time
	err    error
}

func openRecorder(path string) (*Recorder, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return NewRecorder(f, time.Now), nil
}

// NewRecorder records into f (which it does not close) with the clock now.
func NewRecorder(f *os.File, now func() time.Time) *Recorder {
	return &Recorder{f: f, now: now, starts: map[string]time.Time{}}
}

// Err is the first write error, if any: recording never fails a conformance test.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Recorder) write(ev model.UpstreamEvent) {
	b, err := json.Marshal(ev)
	if err == nil {
		_, err = r.f.Write(append(b, '\n'))
	}
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("write event %s %s to %s: %w", ev.Event, ev.Test, r.f.Name(), err)
		fmt.Fprintf(os.Stderr, "gatecheck: %v\n", r.err)
	}
}

func (r *Recorder) plan(p *model.UpstreamPlan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.write(model.UpstreamEvent{Event: model.UpstreamEventPlan, Time: r.now().UTC(), Plan: p})
}

// wrap returns copies of the tests whose bodies first record a start event. The copies apply
// the test's manifests themselves (as ConformanceTest.Run would, just before the body), so that
// the start event comes before the manifests: applying them can take as long as the test.
func (r *Recorder) wrap(all []suite.ConformanceTest) []suite.ConformanceTest {
	out := make([]suite.ConformanceTest, len(all))
	for i, test := range all {
		body, manifests := test.Test, test.Manifests
		name := test.ShortName
		test.Manifests = nil
		test.Test = func(t *testing.T, s *suite.ConformanceTestSuite) {
			r.start(name)
			for _, m := range manifests {
				tlog.Logf(t, "Applying %s", m)
				s.Applier.MustApplyWithCleanup(t, s.Client, s.TimeoutConfig, m, s.CleanupTestResources)
			}
			body(t, s)
		}
		out[i] = test
	}
	return out
}

func (r *Recorder) start(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	r.starts[name] = now
	r.write(model.UpstreamEvent{Event: model.UpstreamEventStart, Time: now, Test: name})
}

func (r *Recorder) end(t *testing.T, test suite.ConformanceTest) {
	res := model.UpstreamEventPass
	switch {
	case t.Failed():
		res = model.UpstreamEventFail
	case t.Skipped():
		res = model.UpstreamEventSkip
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	ev := model.UpstreamEvent{Event: model.UpstreamEventEnd, Time: now, Test: test.ShortName, Result: res,
		Features: featureNames(test.Features), Provisional: test.Provisional}
	if st, ok := r.starts[test.ShortName]; ok {
		ev.Start, ev.ElapsedSeconds = st, now.Sub(st).Seconds()
	}
	r.write(ev)
}

func (r *Recorder) done(reportWritten, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.write(model.UpstreamEvent{Event: model.UpstreamEventDone, Time: r.now().UTC(), ReportWritten: reportWritten, Failed: failed})
}

// profiles are the upstream profiles by name (the suite's own map is private).
var profiles = map[suite.ConformanceProfileName]suite.ConformanceProfile{}

func init() {
	for _, p := range []suite.ConformanceProfile{
		suite.GatewayHTTPConformanceProfile, suite.GatewayTLSConformanceProfile, suite.GatewayTCPConformanceProfile,
		suite.GatewayUDPConformanceProfile, suite.GatewayGRPCConformanceProfile,
		suite.MeshHTTPConformanceProfile, suite.MeshGRPCConformanceProfile,
	} {
		profiles[p.Name] = p
	}
}

// Plan classifies the tests as the suite will (v1.6.3, suite.Run and ConformanceTest.Run):
// which run and which are skipped before their body and why, each test's profiles and level
// (getConformanceProfilesForTest, isTestExtended), and the initial result the report counts
// from. s must come from suite.NewConformanceTestSuite(opts), which settled the features.
func Plan(s *suite.ConformanceTestSuite, opts suite.ConformanceOptions, all []suite.ConformanceTest) *model.UpstreamPlan {
	p := &model.UpstreamPlan{
		Mode: opts.Mode, Implementation: opts.Implementation, GatewayAPIVersion: consts.BundleVersion,
		SupportedFeatures: featureNames(sets.List(s.SupportedFeatures)), Tests: []model.UpstreamPlanTest{},
	}
	if p.Mode == "" {
		p.Mode = "default"
	}
	names := slices.Clone(opts.ConformanceProfiles)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, n := range names {
		cp, ok := profiles[n]
		if !ok {
			continue
		}
		p.Profiles = append(p.Profiles, model.UpstreamPlanProfile{Name: string(n),
			ExtendedSupportedFeatures:   featureNames(sets.List(cp.ExtendedFeatures.Intersection(s.SupportedFeatures))),
			ExtendedUnsupportedFeatures: featureNames(sets.List(cp.ExtendedFeatures.Difference(s.SupportedFeatures)))})
	}
	for _, test := range all {
		pt := model.UpstreamPlanTest{Name: test.ShortName, Description: test.Description,
			Features: featureNames(test.Features), Provisional: test.Provisional, WillRun: true, Initial: "SUCCEEDED"}
		// suite.Run's classification, in its order (later ones win).
		if s.RunTest != "" && test.ShortName != s.RunTest || s.SkipTests.Has(test.ShortName) {
			pt.Initial = "SKIPPED"
		}
		if s.SkipProvisionalTests && test.Provisional {
			pt.Initial = "PROVISIONAL_SKIPPED"
		}
		if !s.SupportedFeatures.HasAll(test.Features...) {
			pt.Initial = "NOT_SUPPORTED"
		}
		// ConformanceTest.Run's skips, in its order (the first one wins).
		if s.RunTest == "" {
			for _, f := range test.Features {
				if !s.SupportedFeatures.Has(f) {
					pt.WillRun, pt.SkipReason = false, fmt.Sprintf("suite does not support %s", f)
					break
				}
			}
		}
		if pt.WillRun && (s.SkipTests.Has(test.ShortName) || s.RunTest != "" && s.RunTest != test.ShortName) {
			pt.WillRun, pt.SkipReason = false, "test explicitly skipped"
		}
		for _, n := range names {
			cp, ok := profiles[n]
			if !ok {
				continue
			}
			in, extended := true, false
			for _, f := range test.Features {
				if !cp.CoreFeatures.Has(f) && !cp.ExtendedFeatures.Has(f) {
					in = false
					break
				}
				if !cp.CoreFeatures.Has(f) {
					extended = true
				}
			}
			if !in {
				continue
			}
			level := "core"
			if extended {
				level = "extended"
			}
			pt.Profiles = append(pt.Profiles, model.UpstreamProfile{Name: string(n), Level: level})
		}
		p.Tests = append(p.Tests, pt)
	}
	return p
}

func featureNames(fs []features.FeatureName) []string {
	if len(fs) == 0 {
		return nil
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	sort.Strings(out)
	return out
}
