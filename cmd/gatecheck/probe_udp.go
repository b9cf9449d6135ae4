package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/suites/probe"
	"github.com/gatecheck/gatecheck/traffic"
)

func init() { probeSubcommands = append(probeSubcommands, newProbeUDPCmd) }

type probeUDPFlags struct {
	probeSplitFlags
	datagrams, lossFlows, lossDatagrams, idleFlows int
	maxLoss                                        float64
	wait, idleTimeout                              time.Duration
}

func newProbeUDPCmd(g *globalOptions) *cobra.Command {
	f := &probeUDPFlags{}
	cmd := &cobra.Command{
		Use:   "udp --addr HOST:PORT --expect NAME=WEIGHT[,NAME=WEIGHT...] [--idle-timeout 5s]",
		Short: "Check a UDPRoute: per-flow split, datagram loss and reordering, flow idle expiry (backends: gatecheck's echo-backend --mode=udp)",
		Long: `udp sends flows (each a fresh client socket, so a fresh source port) to --addr. Each
split flow sends --datagrams datagrams; the backend that answers it is one draw of the
sequential share test (unit: flow). A flow answered by two backends, or by none, fails the
verdict: per-flow routing keeps a flow on one backend and answers it. Then --loss-flows
flows of --loss-datagrams datagrams, paced 1 ms apart, measure loss, reordering and round
trip; loss above --max-loss fails. With --idle-timeout T (the route's flow idle timeout),
--idle-flows flows are kept busy 4 rounds 0.4T apart (none may change backend) and then left
idle 1.6T (some must come back on another backend: use a split route).
Exit codes: 0 pass, 1 a check failed, 2 could not run or undecided.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backends, cfg, err := f.check("flows")
			var errs []error
			if err != nil {
				errs = append(errs, err)
			}
			if f.datagrams < 1 {
				errs = append(errs, fmt.Errorf("flag --datagrams: got %d; want >= 1", f.datagrams))
			}
			if f.lossFlows < 0 || f.lossDatagrams < 1 {
				errs = append(errs, fmt.Errorf("flags --loss-flows %d, --loss-datagrams %d: want >= 0 and >= 1", f.lossFlows, f.lossDatagrams))
			}
			if f.maxLoss < 0 || f.maxLoss > 100 {
				errs = append(errs, fmt.Errorf("flag --max-loss: got %g; want a percentage 0-100", f.maxLoss))
			}
			if f.idleTimeout < 0 {
				errs = append(errs, fmt.Errorf("flag --idle-timeout: got %s; want >= 0 (0 skips the check)", f.idleTimeout))
			}
			if f.idleTimeout > 0 && f.idleFlows < 1 {
				errs = append(errs, fmt.Errorf("flag --idle-flows: got %d; want >= 1", f.idleFlows))
			}
			if err := errors.Join(errs...); err != nil {
				return withExitCode(2, err)
			}
			p := &probe.UDPProbe{Target: f.addr, Backends: backends, Config: cfg, Concurrency: f.concurrency,
				Flow:      traffic.UDPFlowOptions{Datagrams: f.datagrams, Gap: 2 * time.Millisecond, Wait: f.timeout, Size: 64},
				LossFlows: f.lossFlows, LossDatagrams: f.lossDatagrams, MaxLoss: f.maxLoss / 100,
				IdleTimeout: f.idleTimeout, IdleFlows: f.idleFlows}
			rep, err := p.Run(cmd.Context())
			if err != nil {
				return withExitCode(2, fmt.Errorf("probe udp: %w", err))
			}
			return finishProbe(cmd, "udp", rep, rep.WriteText, f.jsonOut, rep.Decision, rep.Message)
		},
	}
	f.register(cmd, "flows")
	fl := cmd.Flags()
	fl.Lookup("timeout").Usage = "how long a flow waits for answers after its last datagram"
	fl.Lookup("timeout").DefValue = "2s"
	f.timeout = 2 * time.Second
	fl.IntVar(&f.datagrams, "datagrams", 3, "datagrams per split flow")
	fl.IntVar(&f.lossFlows, "loss-flows", 4, "flows of the loss and reordering measurement (0 skips it)")
	fl.IntVar(&f.lossDatagrams, "loss-datagrams", 500, "datagrams per loss flow, paced 1 ms apart")
	fl.Float64Var(&f.maxLoss, "max-loss", 1, "datagram loss in percent above which the probe fails")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 0, "the route's flow idle timeout: check flows stick within it and may move after it (0 skips)")
	fl.IntVar(&f.idleFlows, "idle-flows", 24, "flows of the idle expiry check")
	return cmd
}
