package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/suites/probe"
)

func init() { probeSubcommands = append(probeSubcommands, newProbeTCPCmd, newProbeGRPCCmd) }

// probeSplitFlags are the flags of the per-connection (tcp) and per-call (grpc) split probes.
type probeSplitFlags struct {
	addr, authority, expect        string
	maxProbes, concurrency         int
	alpha, power, tolerance, delta float64
	timeout                        time.Duration
	jsonOut                        bool
}

func (f *probeSplitFlags) register(cmd *cobra.Command, unit string) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "target host:port (required), e.g. the Gateway address and listener port")
	fl.StringVar(&f.expect, "expect", "", "declared weights (required), e.g. t1=70,t2=30; 0 means must never answer")
	fl.IntVar(&f.maxProbes, "max-"+unit, probe.DefaultMaxRequests, "most "+unit+" the test may use (it draws what its power needs; fewer can fail but not pass)")
	fl.IntVar(&f.concurrency, "concurrency", 8, unit+" in flight")
	fl.Float64Var(&f.alpha, "alpha", probe.DefaultAlpha, "false-failure probability bound for a correct split")
	fl.Float64Var(&f.power, "power", probe.DefaultPower, "wanted probability of catching a --delta skew")
	fl.Float64Var(&f.tolerance, "tolerance", 100*probe.DefaultTolerance, "half the default --delta, in percentage points (kept for old scripts)")
	fl.Float64Var(&f.delta, "delta", 0, "skew in percentage points to catch with --power (default 2 x --tolerance = 3; relative for smaller shares)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-"+unit[:len(unit)-1]+" timeout")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
}

func (f *probeSplitFlags) check(unit string) ([]probe.Backend, probe.Config, error) {
	var errs []error
	if f.addr == "" {
		errs = append(errs, errors.New("flag --addr: required, e.g. --addr 10.0.0.10:9000"))
	}
	backends, err := probe.ParseBackends(f.expect)
	if err != nil {
		errs = append(errs, fmt.Errorf("flag --expect: %w", err))
	}
	if f.concurrency < 1 {
		errs = append(errs, fmt.Errorf("flag --concurrency: got %d; want >= 1", f.concurrency))
	}
	if f.maxProbes < 1 {
		errs = append(errs, fmt.Errorf("flag --max-%s: got %d; want >= 1", unit, f.maxProbes))
	}
	if f.timeout <= 0 {
		errs = append(errs, fmt.Errorf("flag --timeout: got %s; want > 0", f.timeout))
	}
	errs = append(errs, checkStatFlags(f.alpha, f.power, f.tolerance, f.delta)...)
	cfg := probe.Config{Alpha: f.alpha, Power: f.power, Tolerance: f.tolerance / 100, Delta: f.delta / 100, MaxRequests: f.maxProbes}
	return backends, cfg, errors.Join(errs...)
}

func newProbeTCPCmd(g *globalOptions) *cobra.Command {
	f := &probeSplitFlags{}
	cmd := &cobra.Command{
		Use:   "tcp --addr HOST:PORT --expect NAME=WEIGHT[,NAME=WEIGHT...]",
		Short: "Check a TCPRoute's per-connection split (backends: gatecheck's echo-backend --mode=tcp)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backends, cfg, err := f.check("connections")
			if err != nil {
				return withExitCode(2, err)
			}
			p := &probe.BackendsProbe{Kind: "tcp", Target: f.addr, Backends: backends, Config: cfg, Concurrency: f.concurrency,
				Probe: probe.TCPGreeting(f.addr, f.timeout)}
			return runSplitProbe(cmd, p, f.jsonOut)
		},
	}
	f.register(cmd, "connections")
	return cmd
}

func newProbeGRPCCmd(g *globalOptions) *cobra.Command {
	f := &probeSplitFlags{}
	cmd := &cobra.Command{
		Use:   "grpc --addr HOST:PORT --expect NAME=WEIGHT[,NAME=WEIGHT...] [--authority HOST]",
		Short: "Check a GRPCRoute's per-call split over h2c (backends: gatecheck's echo-backend --mode=grpc)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backends, cfg, err := f.check("calls")
			if err != nil {
				return withExitCode(2, err)
			}
			call, closeConn, err := probe.GRPCUnary(f.addr, f.authority, f.timeout)
			if err != nil {
				return withExitCode(2, err)
			}
			defer closeConn()
			p := &probe.BackendsProbe{Kind: "grpc", Target: f.addr, Backends: backends, Config: cfg, Concurrency: f.concurrency, Probe: call}
			return runSplitProbe(cmd, p, f.jsonOut)
		},
	}
	f.register(cmd, "calls")
	cmd.Flags().StringVar(&f.authority, "authority", "", "the :authority (host) the GRPCRoute matches")
	return cmd
}

func runSplitProbe(cmd *cobra.Command, p *probe.BackendsProbe, jsonOut bool) error {
	rep, err := p.Run(cmd.Context())
	if err != nil {
		return withExitCode(2, fmt.Errorf("probe %s: %w", p.Kind, err))
	}
	return finishProbe(cmd, p.Kind+" split", rep, rep.WriteText, jsonOut, rep.Verdict.Decision, rep.Verdict.Message)
}
