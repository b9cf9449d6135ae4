package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install/gatewayapi"
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
}

// ImageBuilder builds image archives by name and returns their paths.
type ImageBuilder interface {
	Build(ctx context.Context, names []string) ([]string, error)
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
	// Channel is the Gateway API channel to install; default standard.
	Channel string
	// TrafficScale multiplies the suites' request caps (suiteenv.EnvScale).
	TrafficScale float64
	Out          io.Writer
}

// Result is what a run produced.
type Result struct {
	// ExitCode follows the gate: 0 pass, 1 a verdict failed, 2 the run could not complete.
	ExitCode int
	Reasons  []string
	Files    []string
	Duration time.Duration
}

type step struct {
	n, total int
	out      io.Writer
	start    time.Time
}

func (s *step) begin(what string) time.Time {
	s.n++
	fmt.Fprintf(s.out, "==> [%d/%d] %s (%s since start)\n", s.n, s.total, what, time.Since(s.start).Round(time.Second))
	return time.Now()
}

func (s *step) done(what string, t time.Time) {
	fmt.Fprintf(s.out, "    %s: done in %s\n", what, time.Since(t).Round(100*time.Millisecond))
}

// Run executes a whole run. Errors that stop the run before reports exist are returned; once
// reports can be written, problems become report entries and the exit code says 2.
func Run(ctx context.Context, cl Cluster, images ImageBuilder, o Options) (res Result, err error) {
	start := time.Now()
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if o.Channel == "" {
		o.Channel = "standard"
	}
	if err := os.MkdirAll(filepath.Join(o.OutDir, "logs"), 0o755); err != nil {
		return res, fmt.Errorf("create output dir: %w", err)
	}
	st := &step{total: 8, out: out, start: start}
	runMeta := model.Run{
		GatecheckVersion:  version.Version,
		Implementation:    o.Profile.Name,
		GatewayClass:      o.Profile.GatewayClass.Name,
		ClusterProvider:   cl.Name(),
		ReachMode:         string(cmp.Or(o.Profile.Reach.Mode, impls.ReachStatusAddress)),
		GatewayAPIVersion: version.GatewayAPIVersion,
		GatewayAPIChannel: o.Channel,
		Start:             start,
	}
	var incomplete []string
	var ii *implInstaller
	wrote := false

	// A run that stops early still leaves a report saying why (exit 2), so CI always has
	// files to upload. Registered first, so it runs after teardown has been reported.
	defer func() {
		if err == nil || wrote {
			return
		}
		runMeta.End = time.Now()
		runMeta.Incomplete = append(incomplete, err.Error())
		rep := &model.Report{SchemaVersion: model.SchemaVersion, Run: runMeta, Suites: []model.Suite{}}
		g, gateName := o.Gate, o.GateName
		if g == nil {
			g, gateName = gate.Default(), "default"
		}
		g.Apply(rep, gateName)
		if files, werr := render.WriteAll(o.OutDir, rep); werr == nil {
			res.Files = files
			fmt.Fprintf(out, "==> wrote a report of the incomplete run to %s\n", o.OutDir)
		}
	}()

	// Teardown runs on every exit path, with its own context: Ctrl-C cancels ctx, and the
	// cleanup must still happen.
	defer func() {
		if o.Keep {
			fmt.Fprintf(out, "==> keeping the cluster (--keep); kubeconfig: %s\n", cl.Kubeconfig())
			return
		}
		tctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		t := time.Now()
		fmt.Fprintln(out, "==> teardown: removing what this run created")
		var errs []error
		if ii != nil && cl.Name() == "existing" {
			// On a cluster we did not create, remove the implementation we installed.
			if uerr := ii.uninstall(tctx); uerr != nil {
				errs = append(errs, fmt.Errorf("uninstall %s: %w", o.Profile.Name, uerr))
			}
		}
		if derr := cl.Down(tctx); derr != nil {
			errs = append(errs, fmt.Errorf("cluster down: %w", derr))
		}
		if len(errs) > 0 {
			fmt.Fprintf(out, "    teardown problems: %v\n", errors.Join(errs...))
			if err == nil && res.ExitCode == 0 {
				res.ExitCode = 2
				res.Reasons = append(res.Reasons, "teardown failed: "+errors.Join(errs...).Error())
			}
			return
		}
		fmt.Fprintf(out, "    teardown: done in %s\n", time.Since(t).Round(100*time.Millisecond))
	}()

	t := st.begin("cluster: " + cl.Name())
	if err := cl.Up(ctx); err != nil {
		return res, fmt.Errorf("cluster %s: %w", cl.Name(), err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig())
	if err != nil {
		return res, fmt.Errorf("kubeconfig %s: %w", cl.Kubeconfig(), err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	runMeta.KubernetesVersion = serverVersion(cfg)
	st.done("cluster "+runMeta.KubernetesVersion, t)

	imageNames := neededImages(o.Profile.Images.Build, o.Suites)
	t = st.begin("images: build and load " + strings.Join(imageNames, ", "))
	if cl.Name() == "existing" {
		// gatecheck cannot put images on the nodes of a cluster it does not run; the suites
		// check the images they need are present and skip, saying so, when they are not.
		fmt.Fprintf(out, "  skipped: an existing cluster's nodes must already have (or be able to pull) these images: %s\n", strings.Join(imageNames, ", "))
		st.done("images", t)
	} else {
		archives, err := images.Build(ctx, imageNames)
		if err != nil {
			return res, fmt.Errorf("images: %w", err)
		}
		for _, a := range o.Profile.Images.Archives {
			if !filepath.IsAbs(a) {
				a = filepath.Join(o.Profile.Dir, a)
			}
			archives = append(archives, a)
		}
		if err := cl.LoadImages(ctx, archives); err != nil {
			return res, fmt.Errorf("load images: %w", err)
		}
		st.done(fmt.Sprintf("%d image archives", len(archives)), t)
	}

	t = st.begin("Gateway API CRDs " + version.GatewayAPIVersion + " (" + o.Channel + ")")
	if err := gatewayapi.Install(ctx, cfg, o.Channel, out); err != nil {
		return res, err
	}
	st.done("CRDs", t)

	t = st.begin("install implementation " + o.Profile.Name)
	ii = &implInstaller{profile: o.Profile, cfg: cfg, kubeconfig: cl.Kubeconfig(), out: out}
	if err := ii.install(ctx); err != nil {
		return res, err
	}
	if err := ii.waitReady(ctx); err != nil {
		return res, err
	}
	st.done("implementation ready, GatewayClass "+o.Profile.GatewayClass.Name+" Accepted", t)

	var parts []*model.Report

	t = st.begin("upstream conformance suite " + version.GatewayAPIVersion)
	if contains(o.Suites, ConformanceSuite) {
		part, why := runConformance(ctx, o, cl.Kubeconfig(), o.Channel, out)
		if part != nil {
			if part.Conformance != nil {
				part.Conformance.KnownFailures = knownFailures(o.Profile)
			}
			parts = append(parts, part)
		}
		incomplete = append(incomplete, why...)
	} else {
		fmt.Fprintln(out, "  skipped (not in --suites)")
	}
	st.done("conformance", t)

	t = st.begin("gatecheck suites")
	env := suiteenv.Config{
		Kubeconfig: cl.Kubeconfig(), GatewayClass: o.Profile.GatewayClass.Name, Impl: o.Profile.Name,
		ReachMode: runMeta.ReachMode, ReachServiceNamespace: o.Profile.Reach.Service.Namespace, ReachServiceSelector: o.Profile.Reach.Service.Selector,
		Artifacts: filepath.Join(o.OutDir, "artifacts"),
		EchoImage: suiteenv.DefaultEchoImage,
		Features: o.Profile.Conformance.SupportedFeatures, Alpha: suiteenv.DefaultAlpha, Scale: o.TrafficScale,
		SpecTimeout: 5 * time.Minute, TolerancePts: suiteenv.DefaultTolerancePts,
	}
	if env.Scale <= 0 {
		env.Scale = 1
	}
	if o.Gate != nil {
		env.Alpha = o.Gate.Tolerance("alpha", env.Alpha)
		env.TolerancePts = o.Gate.Tolerance("weightTolerancePts", env.TolerancePts)
	}
	_ = os.MkdirAll(env.Artifacts, 0o755)
	for _, s := range o.Suites {
		if s == ConformanceSuite {
			continue
		}
		if ctx.Err() != nil {
			incomplete = append(incomplete, "interrupted before suite "+s)
			break
		}
		rep, serr := runGinkgoSuite(ctx, o, s, env, out)
		if serr != nil {
			incomplete = append(incomplete, serr.Error())
		}
		if rep != nil {
			parts = append(parts, rep)
		}
	}
	st.done("gatecheck suites", t)

	t = st.begin("reports")
	runMeta.End = time.Now()
	if ctx.Err() != nil {
		incomplete = append(incomplete, "run interrupted: "+ctx.Err().Error())
	}
	runMeta.Incomplete = incomplete
	parts = append(parts, &model.Report{Run: runMeta})
	rep, err := ingest.Combine(parts...)
	if err != nil {
		return res, err
	}
	g, gateName := o.Gate, o.GateName
	if g == nil {
		g, gateName = gate.Default(), "default"
	}
	res.ExitCode, res.Reasons = g.Apply(rep, gateName)
	files, err := render.WriteAll(o.OutDir, rep)
	if err != nil {
		return res, fmt.Errorf("write reports: %w", err)
	}
	wrote = true
	res.Files = files
	st.done("reports", t)

	t = st.begin("verdict")
	res.Duration = time.Since(start)
	for _, r := range res.Reasons {
		fmt.Fprintf(out, "  - %s\n", r)
	}
	st.done(fmt.Sprintf("exit code %d", res.ExitCode), t)
	return res, nil
}

func runGinkgoSuite(ctx context.Context, o Options, s string, env suiteenv.Config, out io.Writer) (*model.Report, error) {
	jsonPath := filepath.Join(o.OutDir, "ginkgo-"+s+".json")
	logPath := filepath.Join(o.OutDir, "logs", s+".log")
	// The suites are linked into the gatecheck binary (suites/all): it runs itself, one suite per
	// process, so each suite has its own report and a crash stays within one suite.
	args := []string{SuiteCommand, s, "-ginkgo.v", "-ginkgo.no-color", "-ginkgo.json-report=" + jsonPath}
	if o.Labels != "" {
		args = append(args, "-ginkgo.label-filter="+o.Labels)
	}
	fmt.Fprintf(out, "  suite %s; full log: %s\n", s, logPath)
	rerr := runStreaming(ctx, o.self(), args, env.Environ(), o.OutDir, logPath, out, s+":", keepLines(ginkgoProgress()))
	rep, perr := ingest.ReadFile(jsonPath)
	if perr != nil {
		return nil, fmt.Errorf("suite %s wrote no readable report (exit %d, see %s): %w", s, exitCodeOf(rerr), logPath, perr)
	}
	onlySuite(rep, s)
	return rep, nil
}

// onlySuite drops from rep the specs of the other suites: the binary carries every suite's
// tree, and Ginkgo lists the specs its label filter left out as skipped. Suite-level nodes
// (a failed BeforeSuite, ...) stay.
func onlySuite(rep *model.Report, name string) {
	for i := range rep.Suites {
		rep.Suites[i].Specs = slices.DeleteFunc(rep.Suites[i].Specs, func(sp model.Spec) bool {
			return (sp.NodeType == "" || sp.NodeType == "It") && !slices.Contains(sp.Labels, name)
		})
	}
}

// knownFailures are the profile's documented upstream failures, as the report carries them.
func knownFailures(p *impls.Profile) []model.KnownFailure {
	var out []model.KnownFailure
	for _, k := range p.Conformance.KnownFailures {
		out = append(out, model.KnownFailure{Test: k.Test, Reason: k.Reason})
	}
	return out
}

// neededImages adds to the profile's images what the selected suites need whatever the
// implementation: the upstream suite's base manifests run echo-basic and CoreDNS, gatecheck's
// suites run echo-backend (the sidecar suite's mesh spec also as its proxy).
func neededImages(profile, suites []string) []string {
	out := append([]string{}, profile...)
	add := func(names ...string) {
		for _, n := range names {
			if !contains(out, n) {
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

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
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
