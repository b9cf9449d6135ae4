package traffic

import (
	"context"
	"fmt"

	"github.com/gatecheck/gatecheck/verdict"
)

// Sample drives traffic into a sequential share test until it decides, and returns its
// verdict with the run's summary. Up to maxFailures non-2xx, unidentified or failed requests
// are tolerated (left out of the shares and reported); one more fails the verdict, because a
// correct split serves every request. A cancelled ctx gives an Inconclusive verdict.
//
// Each response is fed with the connection that carried it, so that the verdict can tell a
// split per connection (keep-alive behind a per-connection balancer) from one per request.
func Sample(ctx context.Context, d *Driver, seq *verdict.Sequential, maxRequests, maxFailures int) (verdict.Verdict, Summary, error) {
	seq.SetUnit("request")
	if expected, most := seq.Plan(); most > 0 {
		d.logger().Info("sampling until the verdict decides", "url", d.URL,
			"expectedRequests", int(expected+0.5), "mostRequests", most)
	}
	failures := 0
	// Every request is either counted by the test (at most maxRequests) or a failure (at
	// most maxFailures+1), so this limit never ends a run the test or failures would not.
	limit := Limit{Requests: maxRequests + maxFailures + 1}
	// Results are fed to the test in sending order, not completion order: if one backend
	// is slower, the requests in flight when the test stops would otherwise be mostly its
	// own, biasing the count by up to Concurrency at exactly the moment it matters.
	pending := map[int]Result{}
	next := 1
	sum, err := d.Run(ctx, limit, func(r Result) bool {
		pending[r.Seq] = r
		for {
			r, ok := pending[next]
			if !ok {
				return false
			}
			delete(pending, next)
			next++
			if r.OK() {
				if seq.AddGrouped(r.Backend, r.Conn) {
					return true
				}
				continue
			}
			failures++
			if failures > maxFailures {
				return true
			}
		}
	})
	v := finishVerdict(seq, &sum, failures, maxFailures, ctx.Err())
	if err != nil && ctx.Err() == nil {
		return v, sum, fmt.Errorf("sample %s: %w", d.URL, err)
	}
	return v, sum, nil
}

func finishVerdict(seq *verdict.Sequential, sum *Summary, failures, maxFailures int, ctxErr error) verdict.Verdict {
	switch {
	case failures > maxFailures:
		seq.FailWith(fmt.Sprintf("%d of %d requests failed, more than the %d allowed: %s",
			failures, sum.Observed, maxFailures, sum.FailureText()))
	case ctxErr != nil:
		seq.Abort(fmt.Sprintf("sampling stopped: %v", ctxErr))
	default:
		seq.Finish()
	}
	v := seq.Verdict()
	if failures > 0 && failures <= maxFailures {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d requests failed and were left out of the shares: %s", failures, sum.FailureText()))
	}
	return v
}
