package runner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/internal/version"
	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

// capCluster is a fake cluster whose capabilities a test chooses, recording what the run asks.
type capCluster struct {
	fakeCluster
	canLoad, owned bool
	downErr        error
	built, loaded  []string
}

func (c *capCluster) CanLoadImages() bool { return c.canLoad }
func (c *capCluster) Owned() bool         { return c.owned }
func (c *capCluster) Down(context.Context) error {
	c.downed++
	return c.downErr
}
func (c *capCluster) Build(_ context.Context, names []string) ([]string, error) {
	c.built = append(c.built, names...)
	var out []string
	for _, n := range names {
		out = append(out, "/images/"+n+".tar")
	}
	return out, nil
}
func (c *capCluster) LoadImages(_ context.Context, archives []string) error {
	c.loaded = append(c.loaded, archives...)
	return nil
}

func testRun(t *testing.T, cl *capCluster, o Options) (*run, *bytes.Buffer) {
	t.Helper()
	out := &bytes.Buffer{}
	o.Out, o.OutDir = out, t.TempDir()
	if o.Profile == nil {
		o.Profile = &impls.Profile{Name: "x", GatewayClass: impls.GatewayClass{Name: "gc"}}
	}
	r, err := newRun(cl, cl, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, out
}

// The run is the eight steps of the "==> [n/8]" lines, in this order and with these titles.
func TestStepTitles(t *testing.T) {
	t.Parallel()
	r, _ := testRun(t, &capCluster{}, Options{Suites: []string{"conformance", "canary"}, Channel: "experimental"})
	var got []string
	for _, s := range steps() {
		got = append(got, s.title(r))
	}
	v := version.GatewayAPIVersion
	want := []string{
		"cluster: fake",
		"images: build and load echo-basic, coredns, echo-backend",
		"Gateway API CRDs " + v + " (experimental)",
		"install implementation x",
		"upstream conformance suite " + v,
		"gatecheck suites",
		"reports",
		"verdict",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("step titles (-want +got):\n%s", diff)
	}
}

// runSteps announces each step, reports how long it took, stops at the first failure and tears
// down once whatever happened.
func TestRunStepsStopsAtFailureAndTearsDown(t *testing.T) {
	t.Parallel()
	cl := &capCluster{owned: true}
	r, out := testRun(t, cl, Options{})
	var ran []string
	mk := func(name string, err error) step {
		return step{func(*run) string { return name }, func(context.Context, *run) (string, error) {
			ran = append(ran, name)
			return name + " finished", err
		}}
	}
	err := r.runSteps(context.Background(), []step{mk("first", nil), mk("second", errors.New("boom")), mk("third", nil)})
	if err == nil || err.Error() != "boom" {
		t.Fatalf("runSteps = %v; want the second step's error", err)
	}
	if diff := cmp.Diff([]string{"first", "second"}, ran); diff != "" {
		t.Errorf("steps run (-want +got):\n%s", diff)
	}
	if cl.downed != 1 {
		t.Errorf("Down called %d times; want 1", cl.downed)
	}
	want := regexp.MustCompile(`(?s)^==> \[1/3\] first \(0s since start\)\n    first finished: done in \d+(\.\d+)?m?s\n==> \[2/3\] second \(0s since start\)\n==> teardown: removing what this run created\n    teardown: done in `)
	if !want.MatchString(out.String()) {
		t.Errorf("console:\n%s\nwant it to match %s", out, want)
	}
}

// A teardown that fails after every step ran turns a passing exit code into 2 with the reason;
// after a failed step, the step's error already says the run could not complete.
func TestTeardownFailureIsExit2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		ok       bool
		wantCode int
	}{{"steps ran", true, 2}, {"a step failed", false, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, out := testRun(t, &capCluster{downErr: errors.New("stuck mount")}, Options{})
			r.teardown(tc.ok)
			if r.res.ExitCode != tc.wantCode {
				t.Errorf("exit code %d; want %d (reasons %q)", r.res.ExitCode, tc.wantCode, r.res.Reasons)
			}
			if !strings.Contains(out.String(), "teardown problems: cluster down: stuck mount") {
				t.Errorf("console %q; want the teardown problem", out)
			}
		})
	}
}

// The images step asks the provider, not its name: a cluster that cannot load images builds and
// loads nothing and names the images its nodes must have.
func TestStepImagesFollowsTheProvider(t *testing.T) {
	t.Parallel()
	profile := &impls.Profile{Name: "x", Dir: "/profiles/x", Images: impls.Images{Build: []string{"controller"}, Archives: []string{"extra.tar", "/abs/other.tar"}}}

	cl := &capCluster{canLoad: true}
	r, _ := testRun(t, cl, Options{Profile: profile, Suites: []string{"mirror"}})
	done, err := stepImages(context.Background(), r)
	if err != nil || done != "4 image archives" {
		t.Fatalf("stepImages = %q, %v; want 4 image archives", done, err)
	}
	if diff := cmp.Diff([]string{"/images/controller.tar", "/images/echo-backend.tar", "/profiles/x/extra.tar", "/abs/other.tar"}, cl.loaded); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
	// Loaded into every node by the run: the suites need not find them in status.images.
	if !r.suiteEnv().ImagesPulled {
		t.Error("suites' ImagesPulled false after the run loaded the images itself; want true")
	}

	given := &capCluster{canLoad: false}
	r, out := testRun(t, given, Options{Profile: profile, Suites: []string{"mirror"}})
	done, err = stepImages(context.Background(), r)
	if err != nil || done != "images" || len(given.built)+len(given.loaded) != 0 {
		t.Fatalf("stepImages on a cluster that cannot load images = %q, %v, built %v, loaded %v; want nothing built or loaded", done, err, given.built, given.loaded)
	}
	if r.suiteEnv().ImagesPulled {
		t.Error("suites' ImagesPulled true on a cluster the run loaded nothing into; want false (the suites must check)")
	}
	if want := "  skipped: an existing cluster's nodes must already have (or be able to pull) these images: controller, echo-backend; or pass --registry to push them\n"; out.String() != want {
		t.Errorf("console %q; want %q", out, want)
	}
}

// Finish gates and writes: the gate's name (the built-in gate's default name when none is given)
// and result land in report.json, and the exit code and reasons are the gate's.
func TestFinish(t *testing.T) {
	t.Parallel()
	passed := func() *model.Report {
		return &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{{Name: "gatecheck canary", Specs: []model.Spec{
			{Name: "split", NodeType: "It", Labels: []string{"canary"}, Outcome: model.OutcomePassed},
		}}}}
	}
	failed := passed()
	failed.Suites[0].Specs[0].Outcome = model.OutcomeFailed
	tests := []struct {
		name     string
		rep      *model.Report
		g        *gate.Gate
		gateName string
		wantCode int
		wantFile string
	}{
		{"default gate, pass", passed(), nil, "", 0, "default"},
		{"default gate named by the caller", passed(), nil, "built-in default", 0, "built-in default"},
		{"default gate, failed spec", failed, nil, "", 1, "default"},
		{"no results", &model.Report{SchemaVersion: model.SchemaVersion}, gate.Default(), "mine.yaml", 2, "mine.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			res, err := Finish(tc.rep, tc.g, tc.gateName, dir)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.wantCode || (tc.wantCode != 0) != (len(res.Reasons) > 0) {
				t.Errorf("Finish = exit %d, reasons %q; want exit %d", res.ExitCode, res.Reasons, tc.wantCode)
			}
			if len(res.Files) == 0 {
				t.Fatalf("Finish wrote no files")
			}
			back, err := ingest.ReadFile(filepath.Join(dir, "report.json"))
			if err != nil {
				t.Fatal(err)
			}
			if back.Gate == nil || back.Gate.File != tc.wantFile || back.Gate.Code != tc.wantCode {
				t.Errorf("report.json gate = %+v; want file %q, code %d", back.Gate, tc.wantFile, tc.wantCode)
			}
		})
	}
}

// A write failure is Finish's error, with the gate's verdict still returned.
func TestFinishWriteError(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Finish(&model.Report{SchemaVersion: model.SchemaVersion}, nil, "", file)
	if err == nil || res.ExitCode != 2 {
		t.Fatalf("Finish into a file = %+v, %v; want exit code 2 and a write error", res, err)
	}
}

func TestNeededCRDs(t *testing.T) {
	t.Parallel()
	const g = ".gateway.networking.k8s.io"
	tests := []struct {
		name             string
		suites, profiles []string
		want             []string
	}{
		{"sidecar only", []string{"sidecar"}, nil, []string{"gatewayclasses" + g}},
		{"canary", []string{"canary"}, nil, []string{"gatewayclasses" + g, "gateways" + g, "httproutes" + g}},
		{"tcp and grpc", []string{"tcp", "grpc"}, nil, []string{"gatewayclasses" + g, "gateways" + g, "tcproutes" + g, "grpcroutes" + g}},
		{"conformance by profile", []string{ConformanceSuite}, []string{"GATEWAY-HTTP", "GATEWAY-GRPC"},
			[]string{"gatewayclasses" + g, "gateways" + g, "httproutes" + g, "referencegrants" + g, "grpcroutes" + g}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, neededCRDs(tc.suites, tc.profiles)); diff != "" {
				t.Errorf("neededCRDs (-want +got):\n%s", diff)
			}
		})
	}
}

// fakePusher records what the run pushes and pre-pulls.
type fakePusher struct {
	pingErr, prepullErr error
	pushed, prepulled   []string
}

func (f *fakePusher) Ping(context.Context) error { return f.pingErr }
func (f *fakePusher) Push(_ context.Context, archives []string, _ io.Writer) (imagemap.Map, error) {
	f.pushed = append(f.pushed, archives...)
	m := imagemap.Map{}
	for _, a := range archives {
		if strings.Contains(a, "echo-backend") {
			m[suiteenv.DefaultEchoImage] = "127.0.0.1:5000/" + suiteenv.DefaultEchoImage
		}
	}
	return m, nil
}
func (f *fakePusher) Prepull(_ context.Context, _ *rest.Config, images []string, _ io.Writer) error {
	f.prepulled = append(f.prepulled, images...)
	return f.prepullErr
}
func (f *fakePusher) String() string { return "127.0.0.1:5000" }

// With --registry the images are built, pushed instead of loaded (also where the cluster could
// load them), pulled by the nodes, and the suites are told the pushed echo-backend name.
func TestStepImagesPushesToARegistry(t *testing.T) {
	t.Parallel()
	profile := &impls.Profile{Name: "x", Dir: "/profiles/x", Images: impls.Images{Archives: []string{"extra.tar"}}}
	for _, canLoad := range []bool{false, true} {
		cl, reg := &capCluster{canLoad: canLoad}, &fakePusher{}
		r, _ := testRun(t, cl, Options{Profile: profile, Suites: []string{"canary"}, Registry: reg})
		done, err := stepImages(context.Background(), r)
		if err != nil || done != "1 images pushed to 127.0.0.1:5000 and pulled by the nodes" {
			t.Fatalf("canLoad %v: stepImages = %q, %v; want 1 image pushed", canLoad, done, err)
		}
		if diff := cmp.Diff([]string{"/images/echo-backend.tar", "/profiles/x/extra.tar"}, reg.pushed); diff != "" || len(cl.loaded) != 0 {
			t.Errorf("canLoad %v: pushed (-want +got):\n%s; loaded %v (want none)", canLoad, diff, cl.loaded)
		}
		if diff := cmp.Diff([]string{"127.0.0.1:5000/" + suiteenv.DefaultEchoImage}, reg.prepulled); diff != "" {
			t.Errorf("prepulled (-want +got):\n%s", diff)
		}
		if env := r.suiteEnv(); env.EchoImage != "127.0.0.1:5000/"+suiteenv.DefaultEchoImage || !env.ImagesPulled {
			t.Errorf("suites' echo image %q, images pulled %v; want the pushed one, pulled", env.EchoImage, env.ImagesPulled)
		}
	}

	// A registry that does not answer fails the step before anything is built.
	cl := &capCluster{}
	r, _ := testRun(t, cl, Options{Profile: profile, Suites: []string{"canary"}, Registry: &fakePusher{pingErr: errors.New("--registry 127.0.0.1:5000: not reachable")}})
	if _, err := stepImages(context.Background(), r); err == nil || !strings.Contains(err.Error(), "not reachable") || len(cl.built) != 0 {
		t.Errorf("unreachable registry: %v, built %v; want the ping's error and nothing built", err, cl.built)
	}
	// Nodes that cannot pull fail the step naming the registry.
	r, _ = testRun(t, &capCluster{}, Options{Profile: profile, Suites: []string{"canary"}, Registry: &fakePusher{prepullErr: errors.New("ImagePullBackOff")}})
	if _, err := stepImages(context.Background(), r); err == nil || !strings.Contains(err.Error(), "--registry 127.0.0.1:5000: the nodes cannot pull the pushed images: ImagePullBackOff") {
		t.Errorf("nodes cannot pull: %v; want an error naming --registry", err)
	}
}

// overlapCluster's Up waits (a while) for the image build to begin, as a real bring-up waits
// for its API server: the build must not wait for Up.
type overlapCluster struct {
	capCluster
	building        chan struct{}
	builds          int
	buildDuringUp   bool
	canLoadBeforeUp bool
	// upWait is how long Up waits for the build to begin.
	upWait time.Duration
}

func (c *overlapCluster) CanLoadImages() bool { return c.canLoadBeforeUp }
func (c *overlapCluster) Build(ctx context.Context, names []string) ([]string, error) {
	c.builds++
	close(c.building)
	return c.capCluster.Build(ctx, names)
}
func (c *overlapCluster) Up(context.Context) error {
	select {
	case <-c.building:
		c.buildDuringUp = true
	case <-time.After(c.upWait):
	}
	return nil
}

// TestImagesBuildWhileClusterComesUp: where the cluster will load images, stepCluster starts
// the build before bring-up and the images step uses its result (one build); elsewhere
// nothing is built early.
func TestImagesBuildWhileClusterComesUp(t *testing.T) {
	t.Parallel()
	profile := &impls.Profile{Name: "x", Images: impls.Images{Build: []string{"controller"}}}
	cl := &overlapCluster{building: make(chan struct{}), canLoadBeforeUp: true, upWait: 10 * time.Second}
	cl.canLoad = true
	out := &bytes.Buffer{}
	r, err := newRun(cl, cl, Options{Profile: profile, Suites: []string{"mirror"}, Out: out, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = stepCluster(context.Background(), r) // fails after Up: the fake has no kubeconfig
	if !cl.buildDuringUp {
		t.Fatal("the images were not being built while the cluster came up")
	}
	done, err := stepImages(context.Background(), r)
	if err != nil || done != "2 image archives" || cl.builds != 1 {
		t.Fatalf("stepImages = %q, %v after %d builds; want 2 image archives from the one early build", done, err, cl.builds)
	}
	if diff := cmp.Diff([]string{"/images/controller.tar", "/images/echo-backend.tar"}, cl.loaded); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}

	given := &overlapCluster{building: make(chan struct{}), upWait: 200 * time.Millisecond}
	r, err = newRun(given, given, Options{Profile: profile, Suites: []string{"mirror"}, Out: out, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = stepCluster(context.Background(), r)
	if given.buildDuringUp || given.builds != 0 {
		t.Errorf("a cluster that cannot load images (before it is up) got %d early builds; want none", given.builds)
	}
}

// fakeSuiteBinary writes a script that stands in for gatecheck's hidden suite command: it logs
// "nice NAME N" (its nice value), "start NAME NS FILTER" and "end NAME NS" (nanoseconds; FILTER
// is its -ginkgo.label-filter, "-" without one) to the returned log, takes 1 s, and writes a one-suite report where
// runGinkgoSuite looks for it, with one spec: "NAME spec", or "NAME quiet spec" (labelled
// quiet) when the filter is exactly "quiet". As the upstream suite (__conformance) it waits
// 1 s (its setup), logs "first conformance NS" and starts a test, then ends 1 s later.
func fakeSuiteBinary(t *testing.T) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	bin, log = filepath.Join(dir, "gatecheck"), filepath.Join(dir, "suites.log")
	script := `#!/bin/sh
if [ "$1" = __conformance ]; then
  sleep 1
  echo "first conformance $(date +%s%N)" >> ` + log + `
  echo "=== RUN   TestConformance/First"
  sleep 1
  exit 0
fi
name="$2"
echo "nice $name $(nice)" >> ` + log + `
filter=-
for a in "$@"; do case "$a" in -ginkgo.json-report=*) report="${a#-ginkgo.json-report=}";; -ginkgo.label-filter=*) filter="${a#-ginkgo.label-filter=}";; esac; done
echo "start $name $(date +%s%N) $filter" >> ` + log + `
sleep 1
spec="{\"name\":\"$name spec\",\"nodeType\":\"It\",\"labels\":[\"$name\"],\"outcome\":\"passed\"}"
if [ "$filter" = quiet ]; then spec="{\"name\":\"$name quiet spec\",\"nodeType\":\"It\",\"labels\":[\"$name\",\"quiet\"],\"outcome\":\"passed\"}"; fi
printf '{"schemaVersion":"gatecheck.report/v1","suites":[{"name":"%s","succeeded":true,"specs":[%s]}]}' "$name" "$spec" > "$report"
echo "end $name $(date +%s%N)" >> ` + log + `
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

type span struct {
	start, end int64
	filter     string
}

// suiteSpans reads fakeSuiteBinary's log: when each suite ran, with which label filter.
func suiteSpans(t *testing.T, log string) map[string]*span {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	spans := map[string]*span{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 {
			t.Fatalf("log line %q", line)
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if f[0] != "start" && f[0] != "end" {
			continue
		}
		name := f[1]
		if spans[name] == nil {
			spans[name] = &span{}
		}
		if f[0] == "start" {
			spans[name].start = ns
			if len(f) == 4 {
				spans[name].filter = f[3]
			}
		} else {
			spans[name].end = ns
		}
	}
	return spans
}

// The suites left for after the upstream suite run side by side when the implementation has a
// data plane per Gateway, udp (aloneSuites) then on its own after them; one after another when
// it has one data plane for all (or nobody knows). Their reports keep the selected order.
func TestStepSuitesSideBySideOnlyOnSeparateDataPlanes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dp   *dataPlanes
		// together: mirror and propagation ran at the same time.
		together bool
	}{
		{"a data plane per Gateway", &dataPlanes{Separate: true, Why: "two addresses"}, true},
		{"one data plane", &dataPlanes{Why: "one address"}, false},
		{"not probed and no cluster API", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin, log := fakeSuiteBinary(t)
			suites := []string{ConformanceSuite, "canary", "mirror", "propagation", "udp"}
			r, _ := testRun(t, &capCluster{}, Options{Self: bin, Suites: suites})
			r.ran = []string{"canary"}
			r.dataPlanes = tc.dp
			if _, err := stepSuites(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if len(r.incomplete) > 0 {
				t.Fatalf("incomplete: %v", r.incomplete)
			}
			var got []string
			for _, p := range r.parts {
				for _, s := range p.Suites {
					got = append(got, s.Name)
				}
			}
			want := []string{"mirror", "propagation", "udp"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("reports, in order (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(append([]string{"canary"}, want...), r.ran); diff != "" {
				t.Errorf("ran (-want +got):\n%s", diff)
			}
			spans := suiteSpans(t, log)
			if len(spans) != 3 {
				t.Fatalf("suites run: %v", spans)
			}
			m, p, u := spans["mirror"], spans["propagation"], spans["udp"]
			if together := max(m.start, p.start) < min(m.end, p.end); together != tc.together {
				t.Errorf("mirror and propagation running at once: %v, want %v", together, tc.together)
			}
			if !tc.together && p.start < m.end {
				t.Error("propagation started before mirror ended")
			}
			// udp always runs alone, last.
			if u.start < max(m.end, p.end) {
				t.Error("udp started while another suite ran")
			}
		})
	}
}

// A suite whose other specs ran alongside the upstream suite (r.alongsideParts) runs only its quiet
// specs afterwards, and its report is one suite with both parts' specs; a suite that did not
// run alongside runs whole.
func TestStepSuitesRunsTheQuietSpecsOfSuitesThatRanAlongside(t *testing.T) {
	t.Parallel()
	bin, log := fakeSuiteBinary(t)
	r, _ := testRun(t, &capCluster{}, Options{Self: bin, Suites: []string{ConformanceSuite, "mirror", "propagation", "udp"}})
	r.dataPlanes = &dataPlanes{Separate: true, Why: "two addresses"}
	r.alongsideParts = map[string]*model.Report{
		"mirror": {Suites: []model.Suite{{Name: "mirror", Succeeded: true, Specs: []model.Spec{{Name: "mirror spec", NodeType: "It", Labels: []string{"mirror"}, Outcome: model.OutcomePassed}}}}},
		// udp's alongside part wrote no report: its quiet part still runs.
		"udp": nil,
	}
	if _, err := stepSuites(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	spans := suiteSpans(t, log)
	for name, want := range map[string]string{"mirror": "quiet", "propagation": "-", "udp": "quiet"} {
		if sp := spans[name]; sp == nil || sp.filter != want {
			t.Errorf("suite %s ran with label filter %+v; want %q", name, sp, want)
		}
	}
	var got []string
	for _, p := range r.parts {
		for _, s := range p.Suites {
			for _, sp := range s.Specs {
				got = append(got, s.Name+": "+sp.Name)
			}
		}
	}
	want := []string{"mirror: mirror spec", "mirror: mirror quiet spec", "propagation: propagation spec", "udp: udp quiet spec"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reported specs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"mirror", "propagation", "udp"}, r.ran); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(r.o.OutDir, "ginkgo-mirror-quiet.json")); err != nil {
		t.Errorf("the quiet part's own report: %v", err)
	}
}

// The suites alongside the upstream suite start once its first test does (its setup is on the
// run's critical path), run at a lower CPU priority (alongsideNice), and without their quiet
// specs.
func TestStepConformanceLanesWaitForTheFirstTestAndYieldTheCPU(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("nice"); err != nil {
		t.Skip("no nice command")
	}
	bin, log := fakeSuiteBinary(t)
	r, _ := testRun(t, &capCluster{}, Options{Self: bin, Suites: []string{ConformanceSuite, "sidecar"}})
	if _, err := stepConformance(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var first int64
	niceness := -1
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "first":
			first, _ = strconv.ParseInt(f[2], 10, 64)
		case len(f) == 3 && f[0] == "nice" && f[1] == "sidecar":
			niceness, _ = strconv.Atoi(f[2])
		}
	}
	sp := suiteSpans(t, log)["sidecar"]
	if first == 0 || sp == nil {
		t.Fatalf("log lacks the upstream suite's first test or the sidecar suite:\n%s", b)
	}
	if sp.start < first {
		t.Errorf("sidecar started %v before the upstream suite's first test", time.Duration(first-sp.start))
	}
	// Relative to this process's own nice value (go test may run under nice), capped at 19.
	own, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := min(20-own+alongsideNice, 19); niceness != want {
		t.Errorf("sidecar ran at nice %d; want %d", niceness, want)
	}
	// Without its quiet specs (resource accounting), which stepSuites runs.
	if _, ok := r.alongsideParts["sidecar"]; !ok || sp.filter != "!quiet" || slices.Contains(r.ran, "sidecar") {
		t.Errorf("sidecar ran with label filter %q, alongside parts %v, ran %v; want its alongside part (!quiet), to be completed later", sp.filter, r.alongsideParts, r.ran)
	}
}

// The lanes alongside the upstream suite keep their own order whatever the selection's, and a
// lane with no selected suite is not started.
func TestSelectedLanes(t *testing.T) {
	t.Parallel()
	kept, flat := selectedLanes([][]string{{"tcp", "canary"}, {"propagation", "mirror"}, {"udp"}}, []string{"udp", "canary", "mirror", "tcp"})
	if diff := cmp.Diff([][]string{{"tcp", "canary"}, {"mirror"}, {"udp"}}, kept); diff != "" {
		t.Errorf("lanes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"tcp", "canary", "mirror", "udp"}, flat); diff != "" {
		t.Errorf("suites (-want +got):\n%s", diff)
	}
	if kept, flat := selectedLanes([][]string{{"sidecar"}}, []string{"conformance"}); kept != nil || flat != nil {
		t.Errorf("nothing selected: %v, %v; want no lanes", kept, flat)
	}
}
