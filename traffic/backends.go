package traffic

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gatecheck/gatecheck/verdict"
)

// SampleBackends runs probe from concurrency workers (an RPC, a new connection: anything that
// answers with the backend that served it) and feeds each backend into a sequential share test
// until it decides or maxProbes were counted. A failed probe fails the verdict, since a correct
// split answers every one; what names the probe, the verdict's unit ("RPC", "connection"),
// and describe renders an error for it.
//
// Outcomes enter the test in send order, not completion order, as Sample does for HTTP: if
// one backend answers more slowly, the probes in flight when the test stops would otherwise
// be mostly its own, biasing the count at exactly the moment it matters.
func SampleBackends(ctx context.Context, seq *verdict.Sequential, maxProbes, concurrency int, what string,
	probe func(context.Context) (string, error), describe func(error) string) verdict.Verdict {
	seq.SetUnit(what)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		seq     int64
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
			for ctx.Err() == nil {
				n := issued.Add(1)
				if n > int64(maxProbes) {
					return
				}
				b, err := probe(ctx)
				if ctx.Err() != nil {
					return // cut short by the decision: says nothing about the gateway
				}
				out <- res{n, b, err}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var firstErr error
	failed := 0
	pending := map[int64]res{}
	next := int64(1)
	for r := range out {
		if seq.Done() {
			continue
		}
		pending[r.seq] = r
		for !seq.Done() {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if r.err != nil {
				failed++
				if firstErr == nil {
					firstErr = r.err
				}
				seq.FailWith(fmt.Sprintf("%d %s failed (first: %s)", failed, what, describe(firstErr)))
				cancel()
				break
			}
			if seq.Add(r.backend) {
				cancel()
			}
		}
	}
	if !seq.Done() {
		seq.Finish()
	}
	return seq.Verdict()
}
