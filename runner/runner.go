package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/internal/version"
	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/reports/render"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

// Cluster is what the run needs of a cluster provider.
type Cluster interface {
	// Name is the provider's name for reports ("host", "kind", "existing").
	Name() string
	// Up creates the cluster, or does nothing when it is already up.
	Up(ctx context.Context) error
	// Down removes what Up created; for an existing cluster it does nothing.
	Down(ctx context.Context) error
	// Kubeconfig is the path of the cluster's kubeconfig.
	Kubeconfig() string
	// LoadImages makes image archives available to the cluster's container runtime.
	LoadImages(ctx context.Context, archives []string) error
	// CanLoadImages reports whether LoadImages can; where it cannot (a cluster gatecheck was
	// given), the images step only names the images the nodes must have.
	CanLoadImages() bool
	// Owned reports whether gatecheck created the cluster; on one it was given, teardown
	// uninstalls the implementation the run installed.
	Owned() bool
}

// ImagePusher puts images where a cluster's nodes pull them from (cluster.Registry).
type ImagePusher interface {
	// Ping checks the registry answers, before anything is built.
	Ping(ctx context.Context) error
	// Push pushes the archives' images and returns each built reference's pushed one.
	Push(ctx context.Context, archives []string, out io.Writer) (imagemap.Map, error)
	// Prepull makes every node pull images, so a node that cannot reach the registry fails
	// the run here, naming the image, and the suites find the images on the nodes.
	Prepull(ctx context.Context, cfg *rest.Config, images []string, out io.Writer) error
	// String names the registry (--registry's value).
	String() string
}

// ImageBuilder builds image archives by name and returns their paths.
type ImageBuilder interface {
	Build(ctx context.Context, names []string) ([]string, error)
}

// ImageReferencer is an ImageBuilder that also says the reference an image is built as (its
// first tag), for install.helm.images.
type ImageReferencer interface {
	Reference(name string) (string, error)
}

// Options configure one run.
type Options struct {
	// Self is the gatecheck executable whose hidden entry points (SuiteCommand,
	// ConformanceCommand) run the suites; default os.Executable().
	Self    string
	Profile *impls.Profile
	// Suites are the resolved suite names (see SelectSuites).
	Suites []string
	// Labels is a Ginkgo label filter for gatecheck's suites.
	Labels string
	// OutDir receives every report and log.
	OutDir string
	// Keep leaves the cluster and the installed implementation in place.
	Keep bool
	// Gate is the gate; nil means the default gate. GateName is its file, for the report.
	Gate     *gate.Gate
	GateName string
	// Channel is the Gateway API channel to install (CRD policy install) or require; default
	// the profile's crds.channel, else standard.
	Channel string
	// CRDPolicy is install, skip or require (gatewayapi.Policy); default the profile's
	// crds.policy, else install.
	CRDPolicy string
	// TrafficScale multiplies the suites' request caps (suiteenv.EnvScale).
	TrafficScale float64
	// Helm finds the helm CLI for install.kind helm (helminstall.go); nil looks on PATH.
	Helm HelmFinder
	// Registry, when set, receives gatecheck's images (pushed instead of loaded) and what the
	// run deploys names the pushed references (--registry).
	Registry ImagePusher
	Out      io.Writer

	// pushed maps built image references to the ones pushed to Registry (set by the images step).
	pushed imagemap.Map
}

// Result is what a run produced.
type Result struct {
	// ExitCode follows the gate: 0 pass, 1 a verdict failed, 2 the run could not complete.
	ExitCode int
	Reasons  []string
	Files    []string
	Duration time.Duration
}

// Run executes a whole run: the steps in order (runSteps), teardown whatever happened, and a
// run that stopped early still writes a report saying why. Errors that stop the run before its
// reports exist are returned; once reports can be written, problems become report entries and
// the exit code says 2.
func Run(ctx context.Context, cl Cluster, images ImageBuilder, o Options) (Result, error) {
	r, err := newRun(cl, images, o)
	if err != nil {
		return Result{}, err
	}
	if err := r.runSteps(ctx, steps()); err != nil {
		// CI always has files to upload, even from a run that could not complete (exit 2).
		r.finishIncomplete(err)
		return r.res, err
	}
	return r.res, nil
}

// Finish is the one end of every run, from `gatecheck run` or `gatecheck report`: it gates rep
// (a nil g is the built-in gate; gateName names the gate in the report, default "default"),
// writes every report format into dir and returns the gate's exit code and reasons and the
// files written. The error is render.WriteAll's; the files it wrote are returned with it.
func Finish(rep *model.Report, g *gate.Gate, gateName, dir string) (Result, error) {
	if g == nil {
		g, gateName = gate.Default(), cmp.Or(gateName, "default")
	}
	var res Result
	res.ExitCode, res.Reasons = g.Apply(rep, gateName)
	files, err := render.WriteAll(dir, rep)
	res.Files = files
	return res, err
}

// run is the state the steps share.
type run struct {
	cl     Cluster
	images ImageBuilder
	o      Options
	out    io.Writer
	start  time.Time
	meta   model.Run
	cfg    *rest.Config
	// impl is the installer once the implementation step began, for teardown.
	impl *implInstaller
	// parts are the reports the suites produced, combined by the reports step.
	parts      []*model.Report
	incomplete []string
	// ran are the gatecheck suites already run (alongside the upstream suite).
	ran []string
	// alongsideParts holds, for each suite whose alongsidePart ran alongside the upstream suite,
	// that part's report (nil when it wrote none); stepSuites runs its quietPart and merges them.
	alongsideParts map[string]*model.Report
	// dataPlanes is the answer of the data-plane probe (probeDataPlanes), nil until one ran.
	dataPlanes *dataPlanes
	// imagesLoaded: the images step loaded gatecheck's images into every node itself.
	imagesLoaded bool
	// prebuilt, when not nil, delivers the images built while the cluster came up
	// (stepCluster); the images step then only loads them.
	prebuilt chan builtImages
	res      Result
	// wrote says the reports step wrote the run's reports.
	wrote bool
}

func newRun(cl Cluster, images ImageBuilder, o Options) (*run, error) {
	o.Channel = cmp.Or(o.Channel, o.Profile.CRDs.Channel, "standard")
	if err := os.MkdirAll(filepath.Join(o.OutDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w", err)
	}
	r := &run{cl: cl, images: images, o: o, out: o.Out, start: time.Now()}
	if r.out == nil {
		r.out = io.Discard
	}
	// Suites run side by side (alongside the upstream suite, and after it) and each writes its
	// progress lines: one write at a time, whatever writer the caller gave.
	r.out = &lockedWriter{w: r.out}
	r.meta = model.Run{
		GatecheckVersion:  version.Version,
		Implementation:    o.Profile.Name,
		GatewayClass:      o.Profile.GatewayClass.Name,
		ClusterProvider:   cl.Name(),
		ReachMode:         string(cmp.Or(o.Profile.Reach.Mode, impls.ReachStatusAddress)),
		GatewayAPIVersion: version.GatewayAPIVersion,
		GatewayAPIChannel: o.Channel,
		Start:             r.start,
	}
	return r, nil
}

// runSteps runs steps in order, each announced as "==> [n/total] title" and ended with how long
// it took, until one fails; teardown runs on every way out, panics included.
func (r *run) runSteps(ctx context.Context, steps []step) (err error) {
	defer func() { r.teardown(err == nil) }()
	for i, s := range steps {
		title := s.title(r)
		fmt.Fprintf(r.out, "==> [%d/%d] %s (%s since start)\n", i+1, len(steps), title, time.Since(r.start).Round(time.Second))
		t := time.Now()
		done, err := s.do(ctx, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "    %s: done in %s\n", done, time.Since(t).Round(100*time.Millisecond))
	}
	return nil
}

// teardown removes what the run created, with its own context: Ctrl-C cancels the run's, and
// the cleanup must still happen. ok says the steps all ran; a failed teardown then turns a
// passing exit code into 2.
func (r *run) teardown(ok bool) {
	if r.o.Keep {
		fmt.Fprintf(r.out, "==> keeping the cluster (--keep); kubeconfig: %s\n", r.cl.Kubeconfig())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t := time.Now()
	fmt.Fprintln(r.out, "==> teardown: removing what this run created")
	var errs []error
	if r.impl != nil && !r.cl.Owned() {
		// On a cluster we did not create, remove the implementation we installed, once the
		// namespaces the probe and suites deleted are gone: their Gateways may hold its
		// finalizers. A namespace still held after the wait is named and left (the run's
		// verdicts stand); the implementation is removed as promised.
		if r.cfg != nil && r.impl.removes() {
			cs, err := kubernetes.NewForConfig(r.cfg)
			if err == nil {
				err = waitNamespacesGone(ctx, cs, namespacesGoneTimeout, &indentWriter{w: r.out})
			}
			if err != nil {
				fmt.Fprintf(r.out, "    warning: gatecheck's namespaces: %v; uninstalling %s anyway (it alone removes its finalizers)\n", err, r.o.Profile.Name)
			}
		}
		if err := r.impl.uninstall(ctx); err != nil {
			errs = append(errs, fmt.Errorf("uninstall %s: %w", r.o.Profile.Name, err))
		}
	}
	if err := r.cl.Down(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cluster down: %w", err))
	}
	if len(errs) > 0 {
		fmt.Fprintf(r.out, "    teardown problems: %v\n", errors.Join(errs...))
		if ok && r.res.ExitCode == 0 {
			r.res.ExitCode = 2
			r.res.Reasons = append(r.res.Reasons, "teardown failed: "+errors.Join(errs...).Error())
		}
		return
	}
	fmt.Fprintf(r.out, "    teardown: done in %s\n", time.Since(t).Round(100*time.Millisecond))
}

// finishIncomplete writes the report of a run that stopped on err before writing its own: the
// run's metadata and why it stopped, gated (exit 2).
func (r *run) finishIncomplete(err error) {
	if r.wrote {
		return
	}
	r.meta.End = time.Now()
	r.meta.Incomplete = append(r.incomplete, err.Error())
	rep := &model.Report{SchemaVersion: model.SchemaVersion, Run: r.meta, Suites: []model.Suite{}}
	if res, werr := Finish(rep, r.o.Gate, r.o.GateName, r.o.OutDir); werr == nil {
		r.res.Files = res.Files
		fmt.Fprintf(r.out, "==> wrote a report of the incomplete run to %s\n", r.o.OutDir)
	}
}

// suitePart is which of a suite's specs one run of it takes.
type suitePart int

const (
	wholeSuite suitePart = iota
	// alongsidePart is every spec but those labelled suiteenv.QuietLabel: what runs alongside
	// the upstream suite (stepConformance).
	alongsidePart
	// quietPart is the specs labelled suiteenv.QuietLabel, run afterwards (stepSuites).
	quietPart
)

// filter is the Ginkgo label filter that selects the part ("" for the whole suite).
func (p suitePart) filter() string {
	switch p {
	case alongsidePart:
		return "!" + suiteenv.QuietLabel
	case quietPart:
		return suiteenv.QuietLabel
	}
	return ""
}

// name is what the part adds to the suite's name in file names and on the console.
func (p suitePart) name() string {
	switch p {
	case alongsidePart:
		return "alongside"
	case quietPart:
		return "quiet"
	}
	return ""
}

// has reports whether a spec with these labels belongs to the part.
func (p suitePart) has(labels []string) bool {
	switch p {
	case alongsidePart:
		return !slices.Contains(labels, suiteenv.QuietLabel)
	case quietPart:
		return slices.Contains(labels, suiteenv.QuietLabel)
	}
	return true
}

// alongsideNice is the nice value of the suites that run alongside the upstream suite (where
// the nice command exists): the upstream suite runs its tests one at a time and every one waits
// on Pods, the API server and the data planes, all sharing the CPU with the lanes' traffic; the
// lanes judge no time (stepConformance) and have time to spare, so they take the CPU when the
// upstream suite's side leaves it. Their client slowing also slows the traffic it makes the data
// planes and backends serve.
const alongsideNice = 10

// runGinkgoSuite runs suite s's part in a process of its own and reads the report it wrote;
// alongside says it runs at the same time as the upstream suite (at nice alongsideNice).
func runGinkgoSuite(ctx context.Context, o Options, s string, part suitePart, env suiteenv.Config, out io.Writer, alongside bool) (*model.Report, error) {
	base, what := s, "suite "+s
	if part != wholeSuite {
		base += "-" + part.name()
		what += " (" + part.name() + " specs)"
	}
	jsonPath := filepath.Join(o.OutDir, "ginkgo-"+base+".json")
	logPath := filepath.Join(o.OutDir, "logs", base+".log")
	// The suites are linked into the gatecheck binary (suites/all): it runs itself, one suite per
	// process, so each suite has its own report and a crash stays within one suite.
	args := []string{SuiteCommand, s, "-ginkgo.v", "-ginkgo.no-color", "-ginkgo.json-report=" + jsonPath}
	if f := joinFilters(o.Labels, part.filter()); f != "" {
		args = append(args, "-ginkgo.label-filter="+f)
	}
	bin := o.self()
	if alongside {
		if nice, err := exec.LookPath("nice"); err == nil {
			bin, args = nice, append([]string{"-n", strconv.Itoa(alongsideNice), bin}, args...)
		}
	}
	fmt.Fprintf(out, "  %s; full log: %s\n", what, logPath)
	rerr := runStreaming(ctx, bin, args, env.Environ(), o.OutDir, logPath, out, s+":", keepLines(ginkgoProgress()))
	rep, perr := ingest.ReadFile(jsonPath)
	if perr != nil {
		return nil, fmt.Errorf("%s wrote no readable report (exit %d, see %s): %w", what, exitCodeOf(rerr), logPath, perr)
	}
	onlySuite(rep, s, part)
	return rep, nil
}

// joinFilters is the label filter that needs every non-empty one of filters.
func joinFilters(filters ...string) string {
	var out []string
	for _, f := range filters {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, "("+f+")")
		}
	}
	if len(out) == 1 {
		return strings.TrimSuffix(strings.TrimPrefix(out[0], "("), ")")
	}
	return strings.Join(out, " && ")
}

// onlySuite drops from rep the specs of the other suites, and those of name outside part: the
// binary carries every suite's tree, and Ginkgo lists the specs its label filter left out as
// skipped. Suite-level nodes (a failed BeforeSuite, ...) stay.
func onlySuite(rep *model.Report, name string, part suitePart) {
	for i := range rep.Suites {
		rep.Suites[i].Specs = slices.DeleteFunc(rep.Suites[i].Specs, func(sp model.Spec) bool {
			return (sp.NodeType == "" || sp.NodeType == "It") && (!slices.Contains(sp.Labels, name) || !part.has(sp.Labels))
		})
	}
}

// mergeParts makes one report of a suite's two parts, run in two processes: the suites of b
// join those of a with the same name (specs in a's then b's order, succeeded only if both did),
// the others are added. Either may be nil (its process wrote no report).
func mergeParts(a, b *model.Report) *model.Report {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := *a
	out.Suites = slices.Clone(a.Suites)
	for _, sb := range b.Suites {
		i := slices.IndexFunc(out.Suites, func(sa model.Suite) bool { return sa.Name == sb.Name })
		if i < 0 {
			out.Suites = append(out.Suites, sb)
			continue
		}
		sa := &out.Suites[i]
		sa.Succeeded = sa.Succeeded && sb.Succeeded
		sa.FailureReasons = append(slices.Clone(sa.FailureReasons), sb.FailureReasons...)
		for _, f := range sb.NotClaimed {
			if !slices.Contains(sa.NotClaimed, f) {
				sa.NotClaimed = append(sa.NotClaimed, f)
			}
		}
		if !sb.Start.IsZero() && (sa.Start.IsZero() || sb.Start.Before(sa.Start)) {
			sa.Start = sb.Start
		}
		if sb.End.After(sa.End) {
			sa.End = sb.End
		}
		sa.DurationSeconds += sb.DurationSeconds
		sa.Specs = append(slices.Clone(sa.Specs), sb.Specs...)
	}
	return &out
}

// neededImages adds to the profile's images what the selected suites need whatever the
// implementation: the upstream suite's base manifests run echo-basic and CoreDNS, gatecheck's
// suites run echo-backend (the sidecar suite's mesh spec also as its proxy).
func neededImages(profile, suites []string) []string {
	out := append([]string{}, profile...)
	add := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	for _, s := range suites {
		switch s {
		case ConformanceSuite:
			add("echo-basic", "coredns")
		default:
			add("echo-backend")
		}
	}
	return out
}

func serverVersion(cfg *rest.Config) string {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return ""
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return ""
	}
	return v.GitVersion
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
