package probe

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

// UDPProbe checks a UDPRoute against gatecheck's echo-backend --mode=udp: the per-flow split
// (each flow is a fresh client socket; the verdict's unit is a flow, and a flow answered by
// two backends fails it), datagram loss and reordering over a few paced flows, and, when
// IdleTimeout is set, flow idle expiry.
type UDPProbe struct {
	Target      string
	Backends    []verdict.Backend
	Config      verdict.Config
	Concurrency int
	// Flow shapes each split flow (datagrams per flow, wait for answers).
	Flow traffic.UDPFlowOptions
	// LossFlows flows of LossDatagrams datagrams, paced 1 ms apart, measure loss and
	// reordering; MaxLoss is the loss rate that fails the probe.
	LossFlows, LossDatagrams int
	MaxLoss                  float64
	// IdleTimeout, when > 0, runs the idle expiry check with IdleFlows flows.
	IdleTimeout time.Duration
	IdleFlows   int
}

// UDPLoss is the loss and reordering measurement.
type UDPLoss struct {
	Flows      int     `json:"flows"`
	Sent       int     `json:"sent"`
	Answered   int     `json:"answered"`
	Lost       int     `json:"lost"`
	LossRate   float64 `json:"lossRate"`
	MaxLoss    float64 `json:"maxLoss"`
	Reordered  int     `json:"reordered"`
	Duplicates int     `json:"duplicates"`
	SplitFlows int     `json:"splitFlows"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	OK         bool    `json:"ok"`
	Summary    string  `json:"summary"`
}

// UDPReport is what a udp probe found.
type UDPReport struct {
	Target   string                 `json:"target"`
	Verdict  verdict.Verdict        `json:"verdict"`
	Split    UDPLoss                `json:"splitFlows"`
	Loss     UDPLoss                `json:"loss"`
	Idle     *traffic.UDPIdleResult `json:"idle,omitempty"`
	Decision verdict.Decision       `json:"decision"`
	Message  string                 `json:"message"`
	Elapsed  time.Duration          `json:"-"`
	Seconds  float64                `json:"seconds"`
}

func lossOf(s *traffic.UDPStats, maxLoss float64) UDPLoss {
	l := UDPLoss{Flows: s.Flows, Sent: s.Sent, Answered: s.Answered, Lost: s.Lost(), LossRate: s.LossRate(), MaxLoss: maxLoss,
		Reordered: s.Reordered, Duplicates: s.Dups, SplitFlows: s.Split, Summary: s.Summary()}
	if s.Hist.TotalCount() > 0 {
		l.P50Ms, l.P99Ms = float64(s.Hist.ValueAtQuantile(50))/1000, float64(s.Hist.ValueAtQuantile(99))/1000
	}
	l.OK = l.LossRate <= maxLoss && l.SplitFlows == 0
	return l
}

// Run samples the split until the sequential test decides, then measures loss and (when
// asked) idle expiry. The decision is Pass only when all three pass; Inconclusive when the
// split test could not decide and nothing failed.
func (p *UDPProbe) Run(ctx context.Context) (UDPReport, error) {
	rep := UDPReport{Target: p.Target}
	start := time.Now()
	defer func() { rep.Elapsed = time.Since(start); rep.Seconds = rep.Elapsed.Seconds() }()
	seq, err := verdict.NewSequential(p.Backends, p.Config)
	if err != nil {
		return rep, fmt.Errorf("udp probe: %w", err)
	}
	cap := p.Config.MaxRequests
	if cap == 0 {
		cap = verdict.DefaultMaxRequests
	}
	conc := max(p.Concurrency, 1)
	split := traffic.NewUDPStats()
	rep.Verdict = traffic.SampleBackends(ctx, seq, cap, conc, "flow", traffic.UDPFlowBackend(p.Target, "probe", p.Flow, split), func(err error) string { return err.Error() })
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	rep.Split = lossOf(split, 1) // reported; the split verdict already failed a split or silent flow

	loss := traffic.NewUDPStats()
	var wg sync.WaitGroup
	errs := make([]error, p.LossFlows)
	for i := range p.LossFlows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := traffic.UDPFlow(ctx, p.Target, fmt.Sprintf("loss-%d", i), traffic.UDPFlowOptions{Datagrams: p.LossDatagrams, Gap: time.Millisecond, Wait: p.Flow.Wait, Size: p.Flow.Size, Window: traffic.UDPLossWindow})
			errs[i] = err
			loss.Add(r)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return rep, err
		}
	}
	rep.Loss = lossOf(loss, p.MaxLoss)

	if p.IdleTimeout > 0 {
		r, err := traffic.UDPIdleCheck(ctx, p.Target, p.IdleFlows, p.IdleTimeout)
		if err != nil {
			return rep, fmt.Errorf("udp idle check: %w", err)
		}
		rep.Idle = &r
	}

	var fails []string
	if rep.Verdict.Decision == verdict.Fail {
		fails = append(fails, "split: "+rep.Verdict.Message)
	}
	if !rep.Loss.OK {
		fails = append(fails, fmt.Sprintf("loss: %s (allowed %.2f%% loss, no split flow)", rep.Loss.Summary, 100*p.MaxLoss))
	}
	if rep.Idle != nil && !rep.Idle.OK() {
		fails = append(fails, "idle expiry: "+rep.Idle.Message)
	}
	switch {
	case len(fails) > 0:
		rep.Decision, rep.Message = verdict.Fail, strings.Join(fails, "; ")
	case rep.Verdict.Decision != verdict.Pass:
		rep.Decision, rep.Message = rep.Verdict.Decision, "split: "+rep.Verdict.Message
	default:
		rep.Decision, rep.Message = verdict.Pass, "split, loss"+map[bool]string{true: " and idle expiry", false: ""}[rep.Idle != nil]+" as expected"
	}
	return rep, nil
}

// WriteText renders the report for a person.
func (r UDPReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "probe udp %s, %s\n", r.Target, r.Elapsed.Round(time.Millisecond))
	if err := (WeightsReport{URL: r.Target, Verdict: r.Verdict}).writeVerdict(&b); err != nil {
		return err
	}
	fmt.Fprintf(&b, "split flows: %s\n", r.Split.Summary)
	fmt.Fprintf(&b, "loss and reordering: %s; round trip p50 %.3f ms, p99 %.3f ms (allowed loss %.2f%%): %s\n",
		r.Loss.Summary, r.Loss.P50Ms, r.Loss.P99Ms, 100*r.Loss.MaxLoss, map[bool]string{true: "ok", false: "FAIL"}[r.Loss.OK])
	if r.Idle != nil {
		fmt.Fprintf(&b, "idle expiry (timeout %s): %s: %s\n", r.Idle.Timeout, r.Idle.Message, map[bool]string{true: "ok", false: "FAIL"}[r.Idle.OK()])
	}
	fmt.Fprintf(&b, "decision: %s: %s\n", strings.ToUpper(string(r.Decision)), r.Message)
	_, err := io.WriteString(w, b.String())
	return err
}
