// Package wait polls a condition until it holds, printing progress so a long wait is never
// silent: what it waits for, how long so far, the timeout, and the latest status.
package wait

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Check reports whether the awaited state is reached, and a short status for progress lines
// ("2/3 pods ready"). A non-nil error stops the wait at once (it is not transient).
type Check func(ctx context.Context) (done bool, status string, err error)

// Options tune a wait. Zero values take the defaults in the getters.
type Options struct {
	// Interval between checks; default 500ms.
	Interval time.Duration
	// ProgressEvery is how often a progress line is printed; default 5s.
	ProgressEvery time.Duration
	// Out receives progress lines; nil discards them.
	Out io.Writer
}

func (o Options) interval() time.Duration {
	if o.Interval <= 0 {
		return 500 * time.Millisecond
	}
	return o.Interval
}

func (o Options) progressEvery() time.Duration {
	if o.ProgressEvery <= 0 {
		return 5 * time.Second
	}
	return o.ProgressEvery
}

// TimeoutError says what was awaited, for how long, and the last status seen.
type TimeoutError struct {
	What       string
	Timeout    time.Duration
	LastStatus string
}

func (e *TimeoutError) Error() string {
	if e.LastStatus == "" {
		return fmt.Sprintf("timed out after %s waiting for %s", e.Timeout, e.What)
	}
	return fmt.Sprintf("timed out after %s waiting for %s (last status: %s)", e.Timeout, e.What, e.LastStatus)
}

// For polls check until it reports done, fails, ctx ends or timeout passes. It returns how
// long the wait took.
func For(ctx context.Context, what string, timeout time.Duration, opts Options, check Check) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	nextProgress := start.Add(opts.progressEvery())
	status := ""
	for {
		done, st, err := check(ctx)
		if st != "" {
			status = st
		}
		if err != nil {
			return time.Since(start), fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return time.Since(start), nil
		}
		now := time.Now()
		if now.After(deadline) {
			return time.Since(start), &TimeoutError{What: what, Timeout: timeout, LastStatus: status}
		}
		if opts.Out != nil && now.After(nextProgress) {
			line := fmt.Sprintf("  waiting for %s (%s / %s)", what, now.Sub(start).Round(time.Second), timeout)
			if status != "" {
				line += ": " + status
			}
			fmt.Fprintln(opts.Out, line)
			nextProgress = now.Add(opts.progressEvery())
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(opts.interval()):
		}
	}
}

// Progress reports a long step that has no state to poll (a compile, a download): every
// interval until stop is called, say gets "still <what> (<elapsed> so far)".
func Progress(what string, every time.Duration, say func(line string)) (stop func()) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				say(fmt.Sprintf("still %s (%s so far)", what, time.Since(start).Round(time.Second)))
			}
		}
	}()
	return func() { close(done) }
}
