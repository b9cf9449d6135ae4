package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/suites/probe"
)

func init() { subcommands = append(subcommands, newProbeCmd) }

func newProbeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Aim gatecheck's traffic drivers and verdicts at any address",
		Long: `probe runs one traffic check against a live gateway (staging, a local cluster, a
port-forward) and prints the evidence. Exit codes: 0 the verdict passed, 1 it failed,
2 the probe could not run (bad flags, target unreachable, undecided).`,
	}
	cmd.AddCommand(newProbeWeightsCmd(g), newProbeMirrorCmd(g))
	for _, sub := range probeSubcommands {
		cmd.AddCommand(sub(g))
	}
	return cmd
}

// probeSubcommands are probes defined in their own files (probe_split.go).
var probeSubcommands []func(*globalOptions) *cobra.Command

type probeWeightsFlags struct {
	url, host, expect   string
	headers             []string
	identityFields      []string
	identityHeader      string
	maxRequests         int
	concurrency         int
	rate                float64
	fresh, h2c, jsonOut bool
	insecure            bool
	alpha, power        float64
	tolerance, delta    float64
	maxFailures         int
	timeout             time.Duration
	converge            int
	convergeTimeout     time.Duration
}

func newProbeWeightsCmd(g *globalOptions) *cobra.Command {
	f := &probeWeightsFlags{}
	cmd := &cobra.Command{
		Use:   "weights --url URL --expect NAME=WEIGHT[,NAME=WEIGHT...]",
		Short: "Check that a route splits traffic by its declared weights",
		Long: `weights sends requests to --url, reads which backend answered each one (the echo
backend's JSON "backend" field, else "pod"), and runs a sequential test per share, in send
order, that stops as soon as the answer is clear. A pass means no evidence of a skew: a share
off by --delta points (3 by default; a share below that is tested against double and a
quarter of itself, so a starved backend fails) is caught with the printed power, and a correct
split fails with probability at most --alpha. The test draws as many requests as its power
needs (the report prints the expected and the most); with fewer allowed (--max-requests) it can
fail but not pass. The report prints the exact probability of failing at the declared share and
at the skews, and whether responses cluster by connection or in runs (a split per connection,
not per request, fails and says so). A backend with weight 0, or one not named in --expect,
fails the probe on its first response.`,
		Example: `  gatecheck probe weights --url http://gw.example/api/orders --expect v2=90,v3=10
  gatecheck probe weights --url http://10.0.0.7/ --host shop.example --header x-api-version=v2 \
      --expect v1=0,v2=90,v3=10 --fresh-connections --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProbeWeights(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "target URL (required), e.g. http://gw.example/api/orders")
	fl.StringVar(&f.expect, "expect", "", "declared weights (required), e.g. v2=90,v3=10; 0 means must never answer")
	fl.StringVar(&f.host, "host", "", "Host header to send (when --url names an address)")
	fl.StringArrayVar(&f.headers, "header", nil, "extra request header name=value (repeatable)")
	fl.StringSliceVar(&f.identityFields, "identity-field", probe.DefaultIdentityFields, "JSON fields naming the backend, tried in order")
	fl.StringVar(&f.identityHeader, "identity-header", "", "read the backend from this response header instead of the JSON body")
	fl.IntVar(&f.maxRequests, "max-requests", probe.DefaultMaxRequests, "most responses the test may use (it draws what its power needs; fewer can fail but not pass)")
	fl.IntVar(&f.concurrency, "concurrency", 8, "requests in flight")
	fl.Float64Var(&f.rate, "rate", 0, "requests per second (0: as fast as --concurrency allows)")
	fl.BoolVar(&f.fresh, "fresh-connections", false, "one connection per request (default: keep-alive)")
	fl.BoolVar(&f.h2c, "h2c", false, "HTTP/2 without TLS (prior knowledge)")
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "accept any TLS certificate from an https --url")
	fl.Float64Var(&f.alpha, "alpha", probe.DefaultAlpha, "false-failure probability bound for a correct split")
	fl.Float64Var(&f.power, "power", probe.DefaultPower, "wanted probability of catching a --delta skew")
	fl.Float64Var(&f.tolerance, "tolerance", 100*probe.DefaultTolerance, "half the default --delta, in percentage points (kept for old scripts; not a claim about the observed share)")
	fl.Float64Var(&f.delta, "delta", 0, "skew in percentage points to catch with --power (default 2 x --tolerance = 3; relative for smaller shares)")
	fl.IntVar(&f.maxFailures, "max-failures", 0, "failed requests (non-2xx, errors, unidentified) tolerated")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout")
	fl.IntVar(&f.converge, "converge", 3, "consecutive good responses required before sampling (0: skip)")
	fl.DurationVar(&f.convergeTimeout, "converge-timeout", 30*time.Second, "how long to wait for --converge")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	return cmd
}

func runProbeWeights(cmd *cobra.Command, g *globalOptions, f *probeWeightsFlags) error {
	wp, err := f.build(g)
	if err != nil {
		return withExitCode(2, err)
	}
	rep, err := wp.Run(cmd.Context())
	if err != nil {
		return withExitCode(2, fmt.Errorf("probe weights: %w", err))
	}
	return finishProbe(cmd, "weights", rep, rep.WriteText, f.jsonOut, rep.Verdict.Decision, rep.Verdict.Message)
}

// finishProbe writes a probe's report (JSON or text) and maps its decision to the exit code:
// 0 pass, 1 fail, 2 undecided or the report could not be written.
func finishProbe(cmd *cobra.Command, kind string, rep any, writeText func(io.Writer) error, jsonOut bool, d probe.Decision, msg string) error {
	var err error
	if jsonOut {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = writeText(cmd.OutOrStdout())
	}
	if err != nil {
		return withExitCode(2, fmt.Errorf("write report: %w", err))
	}
	switch d {
	case probe.Pass:
		return nil
	case probe.Fail:
		return withExitCode(1, fmt.Errorf("%s verdict failed: %s", kind, msg))
	default:
		return withExitCode(2, fmt.Errorf("%s verdict undecided: %s", kind, msg))
	}
}

// build checks the flags and assembles the probe; every error names its flag.
func (f *probeWeightsFlags) build(g *globalOptions) (*probe.WeightsProbe, error) {
	var errs []error
	if f.url == "" {
		errs = append(errs, errors.New("flag --url: required, e.g. --url http://gw.example/path"))
	}
	backends, err := probe.ParseBackends(f.expect)
	if err != nil {
		errs = append(errs, fmt.Errorf("flag --expect: %w", err))
	}
	header, herr := parseHeaders(f.headers)
	if herr != nil {
		errs = append(errs, herr)
	}
	if f.concurrency < 1 {
		errs = append(errs, fmt.Errorf("flag --concurrency: got %d; want >= 1", f.concurrency))
	}
	if f.rate < 0 {
		errs = append(errs, fmt.Errorf("flag --rate: got %g; want >= 0", f.rate))
	}
	if f.maxFailures < 0 {
		errs = append(errs, fmt.Errorf("flag --max-failures: got %d; want >= 0", f.maxFailures))
	}
	if f.timeout <= 0 {
		errs = append(errs, fmt.Errorf("flag --timeout: got %s; want > 0", f.timeout))
	}
	errs = append(errs, checkStatFlags(f.alpha, f.power, f.tolerance, f.delta)...)
	if f.maxRequests < 1 {
		errs = append(errs, fmt.Errorf("flag --max-requests: got %d; want >= 1", f.maxRequests))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	identity := probe.JSONIdentity(f.identityFields...)
	if f.identityHeader != "" {
		identity = probe.HeaderIdentity(f.identityHeader)
	}
	return &probe.WeightsProbe{
		Driver: &probe.Driver{
			URL: f.url, Host: f.host, Header: header,
			Concurrency: f.concurrency, Rate: f.rate,
			FreshConnections: f.fresh, H2C: f.h2c, Timeout: f.timeout,
			InsecureSkipVerify: f.insecure,
			Identity:           identity, Logger: g.Logger,
		},
		Backends: backends,
		Config: probe.Config{
			Alpha: f.alpha, Power: f.power,
			Tolerance: f.tolerance / 100, Delta: f.delta / 100,
			MaxRequests: f.maxRequests,
		},
		MaxFailures:     f.maxFailures,
		Converge:        f.converge,
		ConvergeTimeout: f.convergeTimeout,
	}, nil
}

type probeMirrorFlags struct {
	url, host, fraction, mirrorBackend string
	mirrors, headers                   []string
	requests, concurrency, maxFailures int
	rate                               float64
	fresh, h2c, jsonOut                bool
	alpha, power, tolerance, delta     float64
	timeout, settle                    time.Duration
}

func newProbeMirrorCmd(g *globalOptions) *cobra.Command {
	f := &probeMirrorFlags{}
	cmd := &cobra.Command{
		Use:   "mirror --url URL --mirror-admin ADMIN_URL [--fraction 1|0.25|1/4|25%]",
		Short: "Check that a route's request mirror receives the declared share of requests",
		Long: `mirror sends requests (each with a unique x-request-id) to --url, then reads the mirror
backend's records admin API (the echo backend's /records, one --mirror-admin per mirror Pod)
and matches the copies by request id. A full mirror (--fraction 1) fails on any request that
never arrived; a partial one (percent or fraction) is judged by the same sequential test as
weights. Responses from --mirror-backend reaching the client also fail the probe.`,
		Example: `  kubectl port-forward deploy/mirror 9090 &
  gatecheck probe mirror --url http://gw.example/api --mirror-admin http://127.0.0.1:9090 --fraction 25%`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProbeMirror(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "primary route URL (required)")
	fl.StringArrayVar(&f.mirrors, "mirror-admin", nil, "records admin URL of a mirror backend Pod (required, repeatable)")
	fl.StringVar(&f.fraction, "fraction", "1", "declared mirrored share: 1, 0.25, 1/4 or 25%")
	fl.StringVar(&f.mirrorBackend, "mirror-backend", "", "the mirror backend's identity; a client response from it fails the probe")
	fl.StringVar(&f.host, "host", "", "Host header to send")
	fl.StringArrayVar(&f.headers, "header", nil, "extra request header name=value (repeatable)")
	fl.IntVar(&f.requests, "requests", 1000, "requests to send")
	fl.IntVar(&f.concurrency, "concurrency", 8, "requests in flight")
	fl.Float64Var(&f.rate, "rate", 0, "requests per second (0: as fast as --concurrency allows)")
	fl.BoolVar(&f.fresh, "fresh-connections", false, "one connection per request")
	fl.BoolVar(&f.h2c, "h2c", false, "HTTP/2 without TLS (prior knowledge)")
	fl.Float64Var(&f.alpha, "alpha", probe.DefaultAlpha, "false-failure probability bound")
	fl.Float64Var(&f.power, "power", probe.DefaultPower, "wanted probability of catching a --delta skew")
	fl.Float64Var(&f.tolerance, "tolerance", 100*probe.DefaultTolerance, "half the default --delta, in percentage points (partial mirrors)")
	fl.Float64Var(&f.delta, "delta", 0, "skew in percentage points to catch with --power (default 2 x --tolerance = 3; partial mirrors)")
	fl.IntVar(&f.maxFailures, "max-failures", 0, "failed primary requests tolerated")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout")
	fl.DurationVar(&f.settle, "settle", 10*time.Second, "how long to wait for mirrored copies after the last response")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	return cmd
}

func runProbeMirror(cmd *cobra.Command, g *globalOptions, f *probeMirrorFlags) error {
	var errs []error
	if f.url == "" {
		errs = append(errs, errors.New("flag --url: required, e.g. --url http://gw.example/path"))
	}
	if len(f.mirrors) == 0 {
		errs = append(errs, errors.New("flag --mirror-admin: required, the records admin URL of each mirror backend Pod (e.g. a port-forward to :9090)"))
	}
	fraction, err := probe.ParseFraction(f.fraction)
	if err != nil {
		errs = append(errs, fmt.Errorf("flag --fraction: %w", err))
	}
	header, herr := parseHeaders(f.headers)
	if herr != nil {
		errs = append(errs, herr)
	}
	if f.requests < 1 {
		errs = append(errs, fmt.Errorf("flag --requests: got %d; want >= 1", f.requests))
	}
	if f.concurrency < 1 {
		errs = append(errs, fmt.Errorf("flag --concurrency: got %d; want >= 1", f.concurrency))
	}
	errs = append(errs, checkStatFlags(f.alpha, f.power, f.tolerance, f.delta)...)
	if err := errors.Join(errs...); err != nil {
		return withExitCode(2, err)
	}
	m := &probe.MirrorCheck{
		Driver: &probe.Driver{
			URL: f.url, Host: f.host, Header: header, Concurrency: f.concurrency, Rate: f.rate,
			FreshConnections: f.fresh, H2C: f.h2c, Timeout: f.timeout, Logger: g.Logger,
		},
		Mirrors:        f.mirrors,
		Requests:       f.requests,
		Fraction:       fraction,
		Config:         probe.Config{Alpha: f.alpha, Power: f.power, Tolerance: f.tolerance / 100, Delta: f.delta / 100},
		Settle:         f.settle,
		MirrorIdentity: f.mirrorBackend,
		MaxFailures:    f.maxFailures,
	}
	rep, err := m.Run(cmd.Context())
	if err != nil {
		return withExitCode(2, fmt.Errorf("probe mirror: %w", err))
	}
	writeText := func(w io.Writer) error { return probe.WriteMirrorText(w, f.url, f.mirrors, rep) }
	return finishProbe(cmd, "mirror", rep, writeText, f.jsonOut, rep.Verdict.Decision, rep.Verdict.Message)
}

// parseHeaders reads repeated --header name=value (or name:value) flags.
func parseHeaders(hs []string) (http.Header, error) {
	header := http.Header{}
	var errs []error
	for _, h := range hs {
		k, v, ok := strings.Cut(h, "=")
		if !ok {
			k, v, ok = strings.Cut(h, ":")
		}
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("flag --header %q: want name=value", h))
			continue
		}
		header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return header, errors.Join(errs...)
}

// checkStatFlags validates the flags shared by the statistical probes.
func checkStatFlags(alpha, power, tolerance, delta float64) []error {
	var errs []error
	for _, c := range []struct {
		name   string
		v      float64
		lo, hi float64
	}{
		{"--alpha", alpha, 0, 0.5},
		{"--power", power, 0.5, 1},
		{"--tolerance", tolerance, 0, 50},
	} {
		if !(c.v > c.lo && c.v < c.hi) {
			errs = append(errs, fmt.Errorf("flag %s: got %g; want a value in (%g, %g)", c.name, c.v, c.lo, c.hi))
		}
	}
	if delta != 0 && !(delta > 0 && delta < 100) {
		errs = append(errs, fmt.Errorf("flag --delta: got %g; want a value in (0, 100)", delta))
	}
	return errs
}
