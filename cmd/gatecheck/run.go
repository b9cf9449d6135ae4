package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install/gatewayapi"
	"github.com/gatecheck/gatecheck/internal/version"
	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/runner"
)

func init() { subcommands = append(subcommands, newRunCmd) }

type runFlags struct {
	cluster, kubeconfig, impl, suites, labels, out, gate, channel string
	context, crds, registry                                       string
	registryInsecure                                              bool
	keep                                                          bool
	scale                                                         float64
}

func newRunCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Cluster, images, CRDs, implementation, upstream conformance + gatecheck suites, reports, gate (make conformance)",
		Long: `run is make conformance: it brings up a cluster (kind where a container engine can run
privileged containers, else a real single-node cluster on this host, or --cluster existing),
builds and loads the images, installs the Gateway API CRDs and the implementation of --impl,
waits for its GatewayClass to be Accepted, runs the upstream conformance suite and gatecheck's
suites, writes report.json, report.html, junit.xml and conformance-report.yaml, and tears
everything down (also on Ctrl-C) unless --keep.

Exit codes: 0 every gated verdict passed, 1 a verdict failed, 2 the run could not complete.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runRun(c.Context(), c, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cluster, "cluster", "auto", "cluster provider: auto, kind, host or existing")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster (with --cluster existing)")
	fl.StringVar(&f.impl, "impl", "reference", "implementation profile: a name under impls/ or a path to a profile.yaml")
	fl.StringVar(&f.suites, "suites", "all", "comma list of suites (conformance and gatecheck's suites), or all")
	fl.StringVar(&f.labels, "labels", "", "Ginkgo label filter for gatecheck's suites")
	fl.StringVar(&f.out, "out", "", "report directory (default reports/out/<run-id>)")
	fl.StringVar(&f.gate, "gate", "", "gate file (default: the built-in gate, reports/gate/default.yaml)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context of an existing cluster (with --cluster existing; default the kubeconfig's current context); every suite and install command uses it")
	fl.StringVar(&f.channel, "channel", "", "Gateway API channel to install (or, with --crds require, to require): standard or experimental (default: the profile's crds.channel, else standard)")
	fl.StringVar(&f.crds, "crds", "", "Gateway API CRD policy: install (apply the pinned "+version.GatewayAPIVersion+" bundle), skip (use the cluster's, check the needed ones exist) or require (use the cluster's, require the profile's crds.version and channel); default the profile's crds.policy, else install")
	fl.StringVar(&f.registry, "registry", "", "HOST:PORT[/prefix]: push gatecheck's images to this registry instead of loading them (for clusters that cannot load images, e.g. --cluster existing) and deploy the pushed names; plain HTTP for loopback registries (see gatecheck registry serve)")
	fl.BoolVar(&f.registryInsecure, "registry-insecure", false, "speak plain HTTP to a --registry that is not on loopback")
	fl.BoolVar(&f.keep, "keep", false, "keep the cluster and implementation after the run")
	fl.Float64Var(&f.scale, "traffic-scale", 1, "multiply the traffic suites' request ceilings; a verdict that may not draw what its power needs ends inconclusive, never passes (below about 0.34 the 50/50 and mirror verdicts cannot finish)")
	return cmd
}

func runRun(ctx context.Context, c *cobra.Command, g *globalOptions, f *runFlags) error {
	out := c.OutOrStdout()
	// The suites and the upstream suite are in this binary; profiles and their manifests come
	// from the checkout when run in one, else from the copy this binary carries. Only building
	// images needs Go source (cluster.SourceRoot, looked up when images are built).
	files, err := cluster.FilesRoot()
	if err != nil {
		return withExitCode(2, err)
	}
	root, _ := cluster.ModuleRoot("")
	profile, err := impls.Find(files, f.impl)
	if err != nil {
		return withExitCode(2, fmt.Errorf("--impl: %w", err))
	}
	suites, err := runner.SelectSuites(f.suites)
	if err != nil {
		return withExitCode(2, err)
	}
	if f.crds != "" {
		if _, err := gatewayapi.ParsePolicy(f.crds); err != nil {
			return withExitCode(2, fmt.Errorf("--crds: %w", err))
		}
	}
	switch f.channel {
	case "", "standard", "experimental":
	default:
		return withExitCode(2, fmt.Errorf("--channel %q: want standard or experimental", f.channel))
	}
	var pusher runner.ImagePusher
	if f.registry != "" {
		reg, err := cluster.ParseRegistry(f.registry, f.registryInsecure)
		if err != nil {
			return withExitCode(2, err)
		}
		pusher = registryPusher{reg}
	} else if f.registryInsecure {
		return withExitCode(2, fmt.Errorf("--registry-insecure: needs --registry"))
	}
	if f.scale <= 0 || f.scale > 100 {
		return withExitCode(2, fmt.Errorf("--traffic-scale %v: want a number in (0, 100]", f.scale))
	}
	var gt *gate.Gate
	if f.gate != "" {
		if gt, err = gate.Load(f.gate); err != nil {
			return withExitCode(2, fmt.Errorf("--gate: %w", err))
		}
	}
	provider := f.cluster
	if provider == "auto" {
		provider = ""
	}
	name, why, err := cluster.Resolve(ctx, provider, false, cluster.LocalMachine{ModuleRoot: root})
	if err != nil {
		return withExitCode(2, fmt.Errorf("--cluster: %w", err))
	}
	fmt.Fprintf(out, "gatecheck run: implementation %s, cluster %s (%s), suites %s\n", profile.Name, name, why, strings.Join(suites, ","))
	p, err := cluster.New(name, cluster.Options{Kubeconfig: f.kubeconfig, Context: f.context, ModuleRoot: root, Logger: g.Logger, Keep: f.keep})
	if err != nil {
		return withExitCode(2, err)
	}
	if err := cluster.Record(name); err != nil {
		g.Logger.Warn("could not record the provider for later commands", "error", err)
	}
	runID := time.Now().UTC().Format("20060102-150405")
	outDir := f.out
	if outDir == "" && root != "" {
		outDir = filepath.Join(root, "reports", "out", runID)
	} else if outDir == "" {
		outDir = filepath.Join("gatecheck-reports", runID)
	}
	if outDir, err = filepath.Abs(outDir); err != nil {
		return withExitCode(2, err)
	}
	res, err := runner.Run(ctx, namedCluster{p, string(name)}, imageBuilder{dir: filepath.Join(cluster.CacheDir(), "images"), g: g}, runner.Options{
		Profile: profile, Suites: suites, Labels: f.labels, OutDir: outDir,
		Keep: f.keep, Gate: gt, GateName: f.gate, Channel: f.channel, CRDPolicy: f.crds, TrafficScale: f.scale, Out: out, Helm: helmFinder(g),
		Registry: pusher,
	})
	if err != nil {
		for _, file := range res.Files {
			fmt.Fprintf(out, "  %s\n", file)
		}
		return withExitCode(2, err)
	}
	fmt.Fprintf(out, "\nreports in %s:\n", outDir)
	for _, file := range res.Files {
		fmt.Fprintf(out, "  %s\n", file)
	}
	fmt.Fprintf(out, "gatecheck run finished in %s, exit code %d\n", res.Duration.Round(time.Second), res.ExitCode)
	if res.ExitCode != 0 {
		return withExitCode(res.ExitCode, fmt.Errorf("gate: %s", strings.Join(res.Reasons, "; ")))
	}
	return nil
}

// namedCluster adds the provider's name for reports.
type namedCluster struct {
	cluster.Provider
	name string
}

func (n namedCluster) Name() string { return n.name }

// GatewayReach passes on the provider's reach where it has one (kind).
func (n namedCluster) GatewayReach(ctx context.Context) (string, string, error) {
	if gr, ok := n.Provider.(runner.GatewayReacher); ok {
		return gr.GatewayReach(ctx)
	}
	return "", "", nil
}

var _ runner.GatewayReacher = namedCluster{}

// LoadBalancerPool is the provider's MetalLB pool, "" where gatecheck installed none.
func (n namedCluster) LoadBalancerPool(ctx context.Context) (string, error) {
	st, err := n.Provider.Describe(ctx)
	return st.LoadBalancerPool, err
}

var _ runner.LoadBalancerPooler = namedCluster{}

// imageBuilder builds the named images of a profile with the cluster package's builder.
type imageBuilder struct {
	dir string
	g   *globalOptions
}

func (b imageBuilder) Build(ctx context.Context, names []string) ([]string, error) {
	specs, err := imageSpecs(names)
	if err != nil {
		return nil, fmt.Errorf("profile images.build: %w", err)
	}
	root, err := cluster.SourceRoot(ctx)
	if err != nil {
		return nil, err
	}
	built, err := images.Builder{ModuleRoot: root, OutDir: b.dir, Logger: b.g.Logger}.Build(ctx, specs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, x := range built {
		out = append(out, x.Archive)
	}
	return out, nil
}
