package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install/gatewayapi"
	"github.com/gatecheck/gatecheck/internal/version"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/all"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

// step is one stage of a run, as kind's create actions are: runSteps announces its title, runs
// it and reports how long it took. A step's error ends the run (exit 2, with a report of the
// incomplete run); what a suite finds is never an error, it is in the parts.
type step struct {
	// title is the "==> [n/total]" line, read when the step begins.
	title func(r *run) string
	// do runs the step and returns what its "done in" line names.
	do func(ctx context.Context, r *run) (done string, err error)
}

// steps are the run, in order.
func steps() []step {
	return []step{
		{func(r *run) string { return "cluster: " + r.cl.Name() }, stepCluster},
		{func(r *run) string { return "images: build and load " + strings.Join(r.imageNames(), ", ") }, stepImages},
		{func(r *run) string { return r.crdsTitle() }, stepCRDs},
		{func(r *run) string { return "install implementation " + r.o.Profile.Name }, stepImplementation},
		{func(*run) string { return "upstream conformance suite " + version.GatewayAPIVersion }, stepConformance},
		{func(*run) string { return "gatecheck suites" }, stepSuites},
		{func(*run) string { return "reports" }, stepReports},
		{func(*run) string { return "verdict" }, stepVerdict},
	}
}

// builtImages is the result of building the run's images.
type builtImages struct {
	archives []string
	err      error
}

// stepCluster brings the cluster up and reads its Kubernetes version. Where the cluster will
// load images (known before it is up: host and kind), the images are built meanwhile: a warm
// build is a few seconds of compile checks and archive hashing that needs no cluster, and
// bring-up is mostly waiting for the API server and controllers.
func stepCluster(ctx context.Context, r *run) (string, error) {
	if r.cl.CanLoadImages() && r.o.Registry == nil {
		names := r.imageNames()
		r.prebuilt = make(chan builtImages, 1)
		go func() {
			archives, err := r.images.Build(ctx, names)
			r.prebuilt <- builtImages{archives, err}
		}()
	}
	if err := r.cl.Up(ctx); err != nil {
		return "", fmt.Errorf("cluster %s: %w", r.cl.Name(), err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", r.cl.Kubeconfig())
	if err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", r.cl.Kubeconfig(), err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	r.cfg = cfg
	r.meta.KubernetesVersion = serverVersion(cfg)
	if err := r.adjustReach(ctx); err != nil {
		return "", err
	}
	if err := r.fillStaticAddresses(ctx); err != nil { // addresses.go
		return "", err
	}
	return "cluster " + r.meta.KubernetesVersion, nil
}

// GatewayReacher is a cluster that knows how this machine reaches LoadBalancer addresses
// on it (kind: directly where its network is a local bridge, else by port-forward).
type GatewayReacher interface {
	// GatewayReach returns a reach mode ("" when the cluster has no opinion) and why.
	GatewayReach(ctx context.Context) (mode, why string, err error)
}

// adjustReach replaces the profile's status-address reach with the cluster's, when the
// cluster says its Gateway addresses cannot be dialled from here. Other modes were chosen
// on purpose and are kept.
func (r *run) adjustReach(ctx context.Context) error {
	gr, ok := r.cl.(GatewayReacher)
	if !ok || r.meta.ReachMode != string(impls.ReachStatusAddress) {
		return nil
	}
	mode, why, err := gr.GatewayReach(ctx)
	if err != nil {
		return fmt.Errorf("cluster %s: how to reach Gateways: %w", r.cl.Name(), err)
	}
	if mode != "" && mode != r.meta.ReachMode {
		fmt.Fprintf(r.out, "  reach: %s instead of the profile's %s: %s\n", mode, r.meta.ReachMode, why)
		r.meta.ReachMode = mode
	}
	return nil
}

func (r *run) imageNames() []string { return neededImages(r.o.Profile.Images.Build, r.o.Suites) }

// stepImages builds the images the profile and the suites need and loads them with the
// profile's own archives, where the cluster can load images; with a registry (--registry) it
// pushes them there instead, the nodes pull them, and what the run deploys names the pushed
// references.
func stepImages(ctx context.Context, r *run) (string, error) {
	names := r.imageNames()
	if !r.cl.CanLoadImages() && r.o.Registry == nil {
		// The suites check the images they need are present and skip, saying so, when they are not.
		fmt.Fprintf(r.out, "  skipped: an existing cluster's nodes must already have (or be able to pull) these images: %s; or pass --registry to push them\n", strings.Join(names, ", "))
		return "images", nil
	}
	if r.o.Registry != nil {
		// Before minutes of building: a registry that does not answer fails now.
		if err := r.o.Registry.Ping(ctx); err != nil {
			return "", err
		}
	}
	var archives []string
	var err error
	if r.prebuilt != nil {
		b := <-r.prebuilt
		archives, err = b.archives, b.err
	} else {
		archives, err = r.images.Build(ctx, names)
	}
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	for _, a := range r.o.Profile.Images.Archives {
		if !filepath.IsAbs(a) {
			a = filepath.Join(r.o.Profile.Dir, a)
		}
		archives = append(archives, a)
	}
	if r.o.Registry != nil {
		return pushImages(ctx, r, archives)
	}
	if err := r.cl.LoadImages(ctx, archives); err != nil {
		return "", fmt.Errorf("load images: %w", err)
	}
	// The suites need not look for them in the nodes' status.images, which the kubelet caps at
	// 5 names per image (repo digests first): on a machine whose containerd store holds the
	// same image under registry names too, the loaded tag can be missing from it.
	r.imagesLoaded = true
	return fmt.Sprintf("%d image archives", len(archives)), nil
}

// pushImages pushes the archives to the registry, has every node pull the pushed images, and
// keeps the mapping for the steps that deploy them.
func pushImages(ctx context.Context, r *run, archives []string) (string, error) {
	reg := r.o.Registry
	fmt.Fprintf(r.out, "  pushing %d image archives to %s (instead of loading them)\n", len(archives), reg)
	m, err := reg.Push(ctx, archives, r.out)
	if err != nil {
		return "", err
	}
	r.o.pushed = m
	pulled := make([]string, 0, len(m))
	for _, to := range m {
		if !slices.Contains(pulled, to) {
			pulled = append(pulled, to)
		}
	}
	if err := reg.Prepull(ctx, r.cfg, pulled, r.out); err != nil {
		return "", fmt.Errorf("--registry %s: the nodes cannot pull the pushed images: %w", reg, err)
	}
	return fmt.Sprintf("%d images pushed to %s and pulled by the nodes", len(pulled), reg), nil
}

// crdPolicy is --crds, else the profile's crds.policy, else install.
func (r *run) crdPolicy() gatewayapi.Policy {
	return gatewayapi.Policy(cmp.Or(r.o.CRDPolicy, r.o.Profile.CRDs.Policy, string(gatewayapi.PolicyInstall)))
}

func (r *run) crdsTitle() string {
	switch r.crdPolicy() {
	case gatewayapi.PolicySkip:
		return "Gateway API CRDs: policy skip (check the cluster's, install none)"
	case gatewayapi.PolicyRequire:
		return fmt.Sprintf("Gateway API CRDs: policy require %s (%s)", cmp.Or(r.o.Profile.CRDs.Version, version.GatewayAPIVersion), r.o.Channel)
	}
	return "Gateway API CRDs " + version.GatewayAPIVersion + " (" + r.o.Channel + ")"
}

// stepCRDs installs the pinned CRDs, or (policy skip, require) checks the cluster's. A run
// never removes CRDs, neither the ones it found nor the ones it installed.
func stepCRDs(ctx context.Context, r *run) (string, error) {
	p := r.o.Profile
	found, err := gatewayapi.Ensure(ctx, r.cfg, gatewayapi.Want{
		Policy: r.crdPolicy(), Channel: r.o.Channel, Version: p.CRDs.Version,
		Need:          neededCRDs(r.o.Suites, p.Conformance.Profiles),
		AllowMismatch: p.Conformance.AllowCRDsMismatch, MismatchField: "conformance.allowCrdsMismatch",
		Conformance: slices.Contains(r.o.Suites, ConformanceSuite),
	}, r.out)
	if err != nil {
		return "", err
	}
	if found.Version != "" {
		r.meta.GatewayAPIVersion, r.meta.GatewayAPIChannel = found.Version, found.Channel
	}
	return found.Summary, nil
}

// neededCRDs are the Gateway API CRDs the selected suites create objects of (the runner
// itself needs GatewayClasses); the upstream suite's depend on the conformance profiles.
func neededCRDs(suites, profiles []string) []string {
	need := []string{"gatewayclasses"}
	add := func(rs ...string) {
		for _, r := range rs {
			if !slices.Contains(need, r) {
				need = append(need, r)
			}
		}
	}
	for _, s := range suites {
		switch s {
		case ConformanceSuite:
			add("gateways", "httproutes", "referencegrants")
			for _, pr := range profiles {
				switch pr {
				case "GATEWAY-GRPC", "MESH-GRPC":
					add("grpcroutes")
				case "GATEWAY-TCP":
					add("tcproutes")
				case "GATEWAY-TLS":
					add("tlsroutes")
				case "GATEWAY-UDP":
					add("udproutes")
				}
			}
		case "grpc":
			add("gateways", "grpcroutes")
		case "tcp":
			add("gateways", "tcproutes")
		case "udp":
			add("gateways", "udproutes")
		case "sidecar":
			// The kubelet's sidecar ordering: no Gateway API objects.
		default:
			add("gateways", "httproutes")
		}
	}
	out := make([]string, len(need))
	for i, r := range need {
		out[i] = gatewayapi.CRDName(r)
	}
	return out
}

// stepImplementation installs the profile's implementation and waits for its GatewayClass.
func stepImplementation(ctx context.Context, r *run) (string, error) {
	r.impl = &implInstaller{profile: r.o.Profile, cfg: r.cfg, kubeconfig: r.cl.Kubeconfig(), out: r.out, findHelm: r.o.Helm, images: r.o.pushed}
	r.impl.imageRefs, _ = r.images.(ImageReferencer)
	if err := r.impl.install(ctx); err != nil {
		return "", err
	}
	if err := r.impl.waitReady(ctx); err != nil {
		return "", err
	}
	return "implementation ready, GatewayClass " + r.o.Profile.GatewayClass.Name + " Accepted", nil
}

// alongsideConformance are the gatecheck suites that always run at the same time as the
// upstream suite, in lanes: each lane's suites run one after another, the lanes side by side.
// Only the sidecar suite: it judges the kubelet, not the Gateway implementation, creates no
// Gateway API objects and checks orderings, not latencies.
var alongsideConformance = [][]string{{"sidecar"}}

// alongsideSeparate are the traffic suites that also run alongside the upstream suite, in two
// lanes of their own (each lane's suites one after another), when the implementation serves
// each Gateway from its own data plane (probeDataPlanes). Two lanes, not one: at nice 10
// (alongsideNice) one lane of all seven took 240 s, ending 36 s after the upstream suite. Of a suite with specs labelled suiteenv.QuietLabel
// (suites/all.HasQuietSpecs: mirror's isolation, udp's loss and flow expiry), only the other
// specs run here, its quiet specs after the upstream suite (stepSuites). What runs here judges
// no time: the specs count how requests, streams, datagrams and connections are split, that
// none fails and that changes propagate without errors or flaps (latency figures are reported,
// not gated), so sharing the machine with the upstream suite can only lengthen them. On an
// implementation that serves every Gateway from one set of ports (Traefik's entryPoints) the
// suites' catch-all routes would meet on one listener and a correct implementation could fail
// them: there, as when the probe cannot tell, they all run after the upstream suite.
//
// A lane runs in this order, whatever the selection's: the suites that create Gateways and Pods
// in their specs first (tcp, migration), the ones that mostly send traffic over the Gateways
// their setup made after them. The upstream suite runs its HTTP and gRPC tests first, on Gateways its
// setup created, and its TCP, TLS and UDP tests, each with its own Gateway and backend Pods,
// from about a minute in: Pods the lane starts then make the node start the upstream suite's
// Pods later (a warm run's critical path: its TCPRoute tests took 10-12 s instead of 3-4 s with
// the tcp suite's Gateways starting at the same time).
var alongsideSeparate = [][]string{{"tcp", "migration", "grpc", "canary"}, {"propagation", "mirror", "udp"}}

// lanesWait bounds how long the lanes wait for the upstream suite's setup before they start
// anyway (stepConformance).
const lanesWait = 45 * time.Second

// stepConformance runs the upstream suite when selected, with the suites that run alongside it;
// how each ended is in its part.
//
// The lanes start when the upstream suite's first test starts (or lanesWait after the suite
// did, or when it ended): its setup creates its base Gateways, backends and ~15 certificates,
// all on the run's critical path, and took 18-43 s with the lanes' setups at the same time
// against 10 s alone. The lanes finish well before the upstream suite does.
func stepConformance(ctx context.Context, r *run) (string, error) {
	if !slices.Contains(r.o.Suites, ConformanceSuite) {
		fmt.Fprintln(r.out, "  skipped (not in --suites)")
		return "conformance", nil
	}
	type result struct {
		suite string
		part  suitePart
		rep   *model.Report
		err   error
		// deferred: not run here (the probe found no data plane per Gateway); stepSuites runs it.
		deferred bool
	}
	lanes, along := selectedLanes(alongsideConformance, r.o.Suites)
	var probedLanes [][]string
	var probed []string
	if r.cfg != nil {
		probedLanes, probed = selectedLanes(alongsideSeparate, r.o.Suites)
	}
	results := make(chan result, len(along)+len(probed))
	env := r.suiteEnv()
	if len(along)+len(probed) > 0 {
		_ = os.MkdirAll(env.Artifacts, 0o755)
	}
	// testsStarted is closed when the upstream suite's first test starts, or when it ended.
	testsStarted := make(chan struct{})
	var startOnce sync.Once
	started := func() { startOnce.Do(func() { close(testsStarted) }) }
	awaitSetup := func() {
		select {
		case <-testsStarted:
		case <-time.After(lanesWait):
		case <-ctx.Done():
		}
	}
	// runLane runs suites one after another, sending each one's result; a suite with quiet
	// specs runs without them (stepSuites runs them).
	runLane := func(suites []string) {
		for _, s := range suites {
			part := wholeSuite
			if all.HasQuietSpecs(s) {
				part = alongsidePart
			}
			if ctx.Err() != nil {
				results <- result{suite: s, part: part, err: fmt.Errorf("interrupted before suite %s", s)}
				continue
			}
			rep, err := runGinkgoSuite(ctx, r.o, s, part, env, r.out, true)
			results <- result{suite: s, part: part, rep: rep, err: err}
		}
	}
	if len(along) > 0 {
		var desc []string
		for _, lane := range lanes {
			desc = append(desc, describeLane(lane))
		}
		fmt.Fprintf(r.out, "  alongside, once the upstream suite's tests start: %s\n", strings.Join(desc, "; "))
		for _, lane := range lanes {
			go func() {
				awaitSetup()
				runLane(lane)
			}()
		}
	}
	if len(probed) > 0 {
		verb := map[bool]string{true: "runs", false: "run"}[len(probed) == 1]
		var desc []string
		for _, lane := range probedLanes {
			desc = append(desc, describeLane(lane))
		}
		fmt.Fprintf(r.out, "  probing for a data plane per Gateway (two Gateways in namespace %s) once the upstream suite's tests start: if so, %s %s alongside too\n",
			probeNamespace, strings.Join(desc, "; "), verb)
		go func() {
			awaitSetup()
			dp := r.probe(ctx)
			// Read by stepSuites after every result below was received.
			r.dataPlanes = &dp
			if !dp.Separate {
				fmt.Fprintf(r.out, "  data planes: %s; %s %s after the upstream suite\n", dp.Why, strings.Join(probed, ", "), verb)
				for _, s := range probed {
					results <- result{suite: s, deferred: true}
				}
				return
			}
			fmt.Fprintf(r.out, "  data planes: %s; %s %s alongside now\n", dp.Why, strings.Join(desc, "; "), verb)
			for _, lane := range probedLanes[1:] {
				go runLane(lane)
			}
			runLane(probedLanes[0])
		}()
	}
	part, why := runConformance(ctx, r.o, r.cl.Kubeconfig(), r.o.Channel, r.out, started)
	started()
	if part != nil {
		r.parts = append(r.parts, part)
	}
	r.incomplete = append(r.incomplete, why...)
	for range len(along) + len(probed) {
		res := <-results
		if res.deferred {
			continue
		}
		if res.err != nil {
			r.incomplete = append(r.incomplete, res.err.Error())
		}
		if res.part == alongsidePart {
			if r.alongsideParts == nil {
				r.alongsideParts = map[string]*model.Report{}
			}
			r.alongsideParts[res.suite] = res.rep
			continue
		}
		if res.rep != nil {
			r.parts = append(r.parts, res.rep)
		}
		r.ran = append(r.ran, res.suite)
	}
	return "conformance", nil
}

// selectedLanes keeps of each lane the selected suites, in the lane's order, and drops the lanes
// left empty; flat lists the same suites lane after lane.
func selectedLanes(lanes [][]string, selected []string) (kept [][]string, flat []string) {
	for _, lane := range lanes {
		var l []string
		for _, s := range lane {
			if slices.Contains(selected, s) {
				l = append(l, s)
			}
		}
		if len(l) > 0 {
			kept, flat = append(kept, l), append(flat, l...)
		}
	}
	return kept, flat
}

// describeLane names a lane's suites in order, saying of those with quiet specs that those run
// later.
func describeLane(suites []string) string {
	var out []string
	for _, s := range suites {
		if all.HasQuietSpecs(s) {
			s += " (its quiet specs after the upstream suite)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " then ")
}

// suiteEnv is what the runner tells every gatecheck suite (suites/suiteenv).
func (r *run) suiteEnv() suiteenv.Config {
	o := r.o
	env := suiteenv.Config{
		Kubeconfig: r.cl.Kubeconfig(), GatewayClass: o.Profile.GatewayClass.Name, Impl: o.Profile.Name,
		ReachMode: r.meta.ReachMode, ReachServiceNamespace: o.Profile.Reach.Service.Namespace, ReachServiceSelector: o.Profile.Reach.Service.Selector,
		Artifacts: filepath.Join(o.OutDir, "artifacts"),
		EchoImage: o.pushed.Get(suiteenv.DefaultEchoImage),
		Features:  o.Profile.Conformance.SupportedFeatures, Alpha: suiteenv.DefaultAlpha, Scale: o.TrafficScale,
		SpecTimeout: 5 * time.Minute, TolerancePts: suiteenv.DefaultTolerancePts,
		// The images step had every node pull the pushed images (--registry), or loaded them
		// into every node itself.
		ImagesPulled: len(o.pushed) > 0 || r.imagesLoaded,
	}
	if env.Scale <= 0 {
		env.Scale = 1
	}
	if o.Gate != nil {
		env.Alpha = o.Gate.Tolerance("alpha", env.Alpha)
		env.TolerancePts = o.Gate.Tolerance("weightTolerancePts", env.TolerancePts)
	}
	return env
}

// maxAfterLanes bounds how many suites stepSuites runs at once.
const maxAfterLanes = 3

// aloneSuites run with no other suite at the same time, even where the others run side by
// side: udp's loss verdict counts the datagrams a data plane drops, and a busy node makes a
// correct one drop them (19% of 2,000 datagrams lost by the reference with mirror and
// propagation running alongside, once in five runs; none in 26 runs alone).
var aloneSuites = []string{"udp"}

// stepSuites runs gatecheck's selected suites that did not run alongside the upstream suite,
// one process each, and the quiet specs of those that did without them (stepConformance), each
// suite's quiet specs with no other suite running; a suite that cannot run makes the run
// incomplete, not the step fail.
//
// When the implementation serves each Gateway from its own data plane (probeDataPlanes; the
// probe stepConformance ran, or one run here) they run side by side, in up to maxAfterLanes
// lanes, except aloneSuites, which run afterwards one at a time: on separate data planes their
// Gateways, routes and listeners never meet, and the timing verdicts among them hold under each
// other's load: the mirror's isolation bound compares the primary with and without the mirror
// measured at the same time and rate, propagation gates errors and flaps, not latency (a warm
// run spent 74 s on mirror, propagation and udp one after another, the machine 20-35% busy).
// Otherwise (one data plane for all Gateways, where catch-all routes would meet on one
// listener, or the probe could not tell) they all run one after another, in the selected order.
func stepSuites(ctx context.Context, r *run) (string, error) {
	env := r.suiteEnv()
	_ = os.MkdirAll(env.Artifacts, 0o755)
	type job struct {
		suite string
		part  suitePart
	}
	var todo, together, alone []job
	for _, s := range r.o.Suites {
		if s == ConformanceSuite || slices.Contains(r.ran, s) {
			continue
		}
		j := job{suite: s}
		if _, ok := r.alongsideParts[s]; ok {
			j.part = quietPart
		}
		todo = append(todo, j)
		if slices.Contains(aloneSuites, s) || j.part == quietPart {
			alone = append(alone, j)
		} else {
			together = append(together, j)
		}
	}
	describe := func(js []job) string {
		var out []string
		for _, j := range js {
			if j.part == quietPart {
				out = append(out, j.suite+" (quiet specs)")
			} else {
				out = append(out, j.suite)
			}
		}
		return strings.Join(out, " then ")
	}
	// phases run one after another, the lanes of a phase side by side.
	phases := [][][]job{{todo}}
	if len(together) > 1 && r.separateDataPlanes(ctx, describe(todo)) {
		lanes := make([][]job, min(maxAfterLanes, len(together)))
		for i, j := range together {
			lanes[i%len(lanes)] = append(lanes[i%len(lanes)], j)
		}
		var desc []string
		for _, l := range lanes {
			desc = append(desc, describe(l))
		}
		msg := "  side by side (a data plane per Gateway): " + strings.Join(desc, "; ")
		phases = [][][]job{lanes}
		if len(alone) > 0 {
			msg += "; then, alone: " + describe(alone)
			for _, j := range alone {
				phases = append(phases, [][]job{{j}})
			}
		}
		fmt.Fprintln(r.out, msg)
	}
	type result struct {
		rep *model.Report
		err error
		ran bool
	}
	results := make([]result, len(todo))
	for _, lanes := range phases {
		var wg sync.WaitGroup
		for _, lane := range lanes {
			wg.Go(func() {
				for _, j := range lane {
					i := slices.Index(todo, j)
					if ctx.Err() != nil {
						results[i] = result{err: fmt.Errorf("interrupted before suite %s", j.suite)}
						continue
					}
					rep, err := runGinkgoSuite(ctx, r.o, j.suite, j.part, env, r.out, false)
					results[i] = result{rep: rep, err: err, ran: true}
				}
			})
		}
		wg.Wait()
	}
	// In the selected order, whichever lane finished first; a suite's two parts as one.
	for i, res := range results {
		j := todo[i]
		if res.err != nil {
			r.incomplete = append(r.incomplete, res.err.Error())
		}
		rep := res.rep
		if j.part == quietPart {
			rep = mergeParts(r.alongsideParts[j.suite], rep)
		}
		if rep != nil {
			r.parts = append(r.parts, rep)
		}
		if res.ran || j.part == quietPart {
			r.ran = append(r.ran, j.suite)
		}
	}
	return "gatecheck suites", nil
}

// separateDataPlanes says whether the implementation serves each Gateway from its own data
// plane: the answer of stepConformance's probe, or of a probe run now for suites when none ran
// (nothing to ask without the cluster's API: then no).
func (r *run) separateDataPlanes(ctx context.Context, suites string) bool {
	if r.dataPlanes == nil {
		if r.cfg == nil {
			return false
		}
		fmt.Fprintf(r.out, "  probing for a data plane per Gateway (two Gateways in namespace %s): if so, %s run side by side\n",
			probeNamespace, suites)
		dp := r.probe(ctx)
		r.dataPlanes = &dp
		if !dp.Separate {
			fmt.Fprintf(r.out, "  data planes: %s; one suite at a time\n", dp.Why)
		}
	}
	return r.dataPlanes.Separate
}

// probe runs probeDataPlanes against the run's cluster.
func (r *run) probe(ctx context.Context) dataPlanes {
	cs, err := kubernetes.NewForConfig(r.cfg)
	dyn, derr := dynamic.NewForConfig(r.cfg)
	if err = errors.Join(err, derr); err != nil {
		return dataPlanes{Why: err.Error()}
	}
	return probeDataPlanes(ctx, cs, dyn, r.o.Profile.GatewayClass.Name, probeTimeout)
}

// stepReports combines the parts with the run's metadata and finishes the run (Finish).
func stepReports(ctx context.Context, r *run) (string, error) {
	r.meta.End = time.Now()
	if ctx.Err() != nil {
		r.incomplete = append(r.incomplete, "run interrupted: "+ctx.Err().Error())
	}
	r.meta.Incomplete = r.incomplete
	rep, err := ingest.Combine(append(r.parts, &model.Report{Run: r.meta})...)
	if err != nil {
		return "", err
	}
	res, err := Finish(rep, r.o.Gate, r.o.GateName, r.o.OutDir)
	r.res.ExitCode, r.res.Reasons = res.ExitCode, res.Reasons
	if err != nil {
		return "", fmt.Errorf("write reports: %w", err)
	}
	r.wrote, r.res.Files = true, res.Files
	return "reports", nil
}

// stepVerdict prints why the gate did not pass, if it did not.
func stepVerdict(_ context.Context, r *run) (string, error) {
	r.res.Duration = time.Since(r.start)
	for _, why := range r.res.Reasons {
		fmt.Fprintf(r.out, "  - %s\n", why)
	}
	return fmt.Sprintf("exit code %d", r.res.ExitCode), nil
}
