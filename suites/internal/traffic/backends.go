package traffic

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gatecheck/gatecheck/suites/internal/verdict"
)

// SampleBackends runs probe from concurrency workers (an RPC, a new connection: anything that
// answers with the backend that served it) and feeds each backend into a sequential share test
// until it decides or maxProbes were counted. A failed probe fails the verdict, since a correct
// split answers every one; what names the probe in that message ("RPC", "connection"), and
// describe renders an error for it.
func SampleBackends(ctx context.Context, seq *verdict.Sequential, maxProbes, concurrency int, what string,
	probe func(context.Context) (string, error), describe func(error) string) verdict.Verdict {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		backend string
		err     error
	}
	out := make(chan res, concurrency)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for issued.Add(1) <= int64(maxProbes) && ctx.Err() == nil {
				b, err := probe(ctx)
				if ctx.Err() != nil {
					return // cut short by the decision: says nothing about the gateway
				}
				out <- res{b, err}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var firstErr error
	failed := 0
	for r := range out {
		if seq.Done() {
			continue
		}
		if r.err != nil {
			failed++
			if firstErr == nil {
				firstErr = r.err
			}
			seq.FailWith(fmt.Sprintf("%d %s failed (first: %s)", failed, what, describe(firstErr)))
			cancel()
			continue
		}
		if seq.Add(r.backend) {
			cancel()
		}
	}
	if !seq.Done() {
		seq.Finish()
	}
	return seq.Verdict()
}
