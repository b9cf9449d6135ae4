package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/migrate"
	"github.com/gatecheck/gatecheck/migrate/check"
	"github.com/gatecheck/gatecheck/suites/probe"
)

func init() { probeSubcommands = append(probeSubcommands, newProbeMigrationCmd) }

type probeMigrationFlags struct {
	files                     []string
	ingressAddr, gatewayAddr  string
	ingressHTTP, ingressHTTPS string
	gatewayHTTP, gatewayHTTPS string
	noWeights, jsonOut        bool
	maxRequests               int
	alpha, power, tol, delta  float64
	timeout                   time.Duration
}

func newProbeMigrationCmd(g *globalOptions) *cobra.Command {
	f := &probeMigrationFlags{}
	cmd := &cobra.Command{
		Use:   "migration -f INGRESSES --ingress-addr ADDR --gateway-addr ADDR",
		Short: "Check that Gateway API routes answer like the Ingresses they replace",
		Long: `migration derives requests from the Ingress rules in -f (hosts x paths x canary headers,
over HTTP and, for TLS hosts, HTTPS, plus near-misses: trailing slashes, the path as a string
prefix, upper case, unknown hosts and paths), sends each through the Ingress address and the
Gateway address (Host header and SNI set, redirects not followed, any certificate accepted),
and compares status, the backend that answered (the echo backend's "backend" field), the path
it saw and the redirect Location. Canary weights are sampled on both sides with the verdict
engine. Prints both answers side by side and the first request that differs.
Exit codes: 0 everything agrees and every split passes, 1 a difference or a failed split,
2 the probe could not run.`,
		Example: `  gatecheck probe migration -f ingresses.yaml --ingress-addr 10.0.1.5 --gateway-addr 10.0.1.6
  gatecheck probe migration -f ing.yaml --ingress-http 127.0.0.1:8080 --ingress-https 127.0.0.1:8443 \
      --gateway-http 127.0.0.1:9080 --gateway-https 127.0.0.1:9443 --no-weights`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProbeMigration(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "file, glob or - with the Ingresses (required)")
	fl.StringVar(&f.ingressAddr, "ingress-addr", "", "address of the Ingress controller (HTTP on 80, HTTPS on 443)")
	fl.StringVar(&f.gatewayAddr, "gateway-addr", "", "address of the Gateway (HTTP on 80, HTTPS on 443)")
	fl.StringVar(&f.ingressHTTP, "ingress-http", "", "host:port for HTTP through the Ingress (overrides --ingress-addr)")
	fl.StringVar(&f.ingressHTTPS, "ingress-https", "", "host:port for HTTPS through the Ingress")
	fl.StringVar(&f.gatewayHTTP, "gateway-http", "", "host:port for HTTP through the Gateway")
	fl.StringVar(&f.gatewayHTTPS, "gateway-https", "", "host:port for HTTPS through the Gateway")
	fl.BoolVar(&f.noWeights, "no-weights", false, "skip sampling the canary splits")
	fl.IntVar(&f.maxRequests, "max-requests", probe.DefaultMaxRequests, "most requests per split and side")
	fl.Float64Var(&f.alpha, "alpha", probe.DefaultAlpha, "false-failure probability bound for a correct split")
	fl.Float64Var(&f.power, "power", probe.DefaultPower, "wanted probability of catching a --delta skew")
	fl.Float64Var(&f.tol, "tolerance", 100*probe.DefaultTolerance, "half the default --delta, in percentage points")
	fl.Float64Var(&f.delta, "delta", 0, "skew in percentage points to catch with --power (default 3)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout")
	fl.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	return cmd
}

func target(addr, http, https string, timeout time.Duration) (check.Target, error) {
	t := check.Target{Timeout: timeout}
	if addr != "" {
		t = check.TargetAt(addr)
		t.Timeout = timeout
	}
	if http != "" {
		t.HTTP = http
	}
	if https != "" {
		t.HTTPS = https
	}
	for _, hp := range []string{t.HTTP, t.HTTPS} {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return t, fmt.Errorf("%q is not host:port", hp)
		}
	}
	return t, nil
}

type migrationProbeReport struct {
	Comparison check.Result           `json:"comparison"`
	Skipped    []string               `json:"skipped,omitempty"`
	Splits     []migrationSplitReport `json:"splits,omitempty"`
}

type migrationSplitReport struct {
	Side   string              `json:"side"`
	Split  check.Split         `json:"split"`
	Report probe.WeightsReport `json:"report"`
}

func runProbeMigration(cmd *cobra.Command, f *probeMigrationFlags) error {
	var errs []error
	if len(f.files) == 0 {
		errs = append(errs, errors.New("flag -f: required (the Ingresses)"))
	}
	if f.ingressAddr == "" && (f.ingressHTTP == "" || f.ingressHTTPS == "") {
		errs = append(errs, errors.New("flag --ingress-addr (or --ingress-http and --ingress-https): required"))
	}
	if f.gatewayAddr == "" && (f.gatewayHTTP == "" || f.gatewayHTTPS == "") {
		errs = append(errs, errors.New("flag --gateway-addr (or --gateway-http and --gateway-https): required"))
	}
	errs = append(errs, checkStatFlags(f.alpha, f.power, f.tol, f.delta)...)
	if err := errors.Join(errs...); err != nil {
		return withExitCode(2, err)
	}
	ing, err := target(f.ingressAddr, f.ingressHTTP, f.ingressHTTPS, f.timeout)
	if err != nil {
		return withExitCode(2, fmt.Errorf("Ingress side: %w", err))
	}
	gw, err := target(f.gatewayAddr, f.gatewayHTTP, f.gatewayHTTPS, f.timeout)
	if err != nil {
		return withExitCode(2, fmt.Errorf("Gateway side: %w", err))
	}
	var objs migrate.Objects
	if err := readFiles(cmd.InOrStdin(), f.files, &objs); err != nil {
		return withExitCode(2, err)
	}
	if len(objs.Ingresses) == 0 {
		return withExitCode(2, errors.New("no networking.k8s.io/v1 Ingress in -f"))
	}
	plan := check.Matrix(objs.Ingresses)
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	fmt.Fprintf(errOut, "sending %d requests through both sides\n", len(plan.Requests))
	rep := migrationProbeReport{Comparison: check.Run(cmd.Context(), plan, ing, gw), Skipped: plan.Skipped}
	allFailed := true
	for _, row := range rep.Comparison.Rows {
		allFailed = allFailed && row.Ingress.Err != "" && row.Gateway.Err != ""
	}
	if allFailed {
		return withExitCode(2, fmt.Errorf("no request got an answer from either side (first: %s)", rep.Comparison.Rows[0].Ingress.Err))
	}
	failedSplit := false
	if !f.noWeights {
		cfg := probe.Config{Alpha: f.alpha, Power: f.power, Tolerance: f.tol / 100, Delta: f.delta / 100, MaxRequests: f.maxRequests}
		for _, s := range plan.Splits {
			for _, side := range []struct {
				name string
				t    check.Target
			}{{"Ingress", ing}, {"Gateway", gw}} {
				fmt.Fprintf(errOut, "sampling %s://%s%s through the %s (declared %v)\n", s.Scheme, s.Host, s.Path, side.name, s.Backends)
				d := &probe.Driver{URL: side.t.URL(s.Scheme, s.Path), Host: s.Host, InsecureSkipVerify: true, Timeout: f.timeout, Concurrency: 8, ProgressEvery: 10 * time.Second}
				wr, err := (&probe.WeightsProbe{Driver: d, Backends: s.Backends, Config: cfg, Converge: 3}).Run(cmd.Context())
				if err != nil {
					return withExitCode(2, fmt.Errorf("split %s://%s%s through the %s: %w", s.Scheme, s.Host, s.Path, side.name, err))
				}
				failedSplit = failedSplit || wr.Verdict.Decision != probe.Pass
				rep.Splits = append(rep.Splits, migrationSplitReport{Side: side.name, Split: s, Report: wr})
			}
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return withExitCode(2, err)
		}
	} else {
		fmt.Fprint(out, rep.Comparison.Table())
		for _, s := range plan.Skipped {
			fmt.Fprintln(out, "skipped:", s)
		}
		for _, s := range rep.Splits {
			fmt.Fprintf(out, "split through the %s: ", s.Side)
			if err := s.Report.WriteText(out); err != nil {
				return withExitCode(2, err)
			}
		}
	}
	if rep.Comparison.First != nil {
		r := rep.Comparison.First
		return withExitCode(1, fmt.Errorf("%d of %d requests differ; first: %s: Ingress %s, Gateway %s (%s)", rep.Comparison.Differing, len(rep.Comparison.Rows), r.Request, r.Ingress, r.Gateway, r.Diff))
	}
	if failedSplit {
		return withExitCode(1, errors.New("a canary split verdict did not pass"))
	}
	return nil
}
