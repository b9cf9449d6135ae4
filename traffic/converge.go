package traffic

import (
	"context"
	"fmt"
	"time"
)

// Converge sends requests one at a time until want holds for n consecutive responses, as
// upstream conformance does before measuring (routes are eventually consistent), and
// returns how long that took. It logs progress every ProgressEvery.
func (d *Driver) Converge(ctx context.Context, n int, timeout time.Duration, want func(Result) bool) (time.Duration, error) {
	if err := d.init(); err != nil {
		return 0, err
	}
	if n < 1 {
		n = 1
	}
	if want == nil {
		want = Result.OK
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	every := d.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	start, lastLog := time.Now(), time.Now()
	inRow, seq := 0, 0
	var last Result
	for inRow < n {
		seq++
		r := d.Do(ctx, -seq) // negative seq: convergence requests are not part of a sample
		if ctx.Err() != nil && r.Status == 0 {
			// Cut short by the deadline: the previous answer is the one worth reporting.
			if seq == 1 {
				last = r
			}
			return time.Since(start), fmt.Errorf("converge on %s: no %d consecutive expected responses within %s (last: %s): %w",
				d.URL, n, timeout, describe(last), ctx.Err())
		}
		last = r
		if want(last) {
			inRow++
			continue
		}
		inRow = 0
		if time.Since(lastLog) >= every {
			lastLog = time.Now()
			d.logger().Info("waiting for consistent responses", "url", d.URL, "want", fmt.Sprintf("%d in a row", n),
				"last", describe(last), "elapsed", time.Since(start).Round(time.Second).String(), "timeout", timeout.String())
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("converge on %s: no %d consecutive expected responses within %s (last: %s): %w",
				d.URL, n, timeout, describe(last), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

func describe(r Result) string {
	switch {
	case r.Status == 0 && r.Err != nil:
		return "error: " + r.Err.Error()
	case r.Err != nil:
		return fmt.Sprintf("status %d, %v", r.Status, r.Err)
	case r.Backend != "":
		return fmt.Sprintf("status %d from %s", r.Status, r.Backend)
	default:
		return fmt.Sprintf("status %d", r.Status)
	}
}
