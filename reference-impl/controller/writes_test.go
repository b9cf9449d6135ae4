package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteQueueCoalesces(t *testing.T) {
	t.Parallel()
	q := newWriteQueue(slog.New(slog.DiscardHandler))
	var ran []string
	q.add("a", func(context.Context) error { ran = append(ran, "a1"); return nil })
	q.add("b", func(context.Context) error { ran = append(ran, "b"); return errors.New("boom") })
	q.add("a", func(context.Context) error { ran = append(ran, "a2"); return nil })
	q.drain(context.Background())
	if len(ran) != 2 || ran[0] != "a2" || ran[1] != "b" {
		t.Errorf("ran %v; want [a2 b] (the newer job for a replaces the pending one, order kept)", ran)
	}
}

// TestWriteQueueRetries: a failed write runs again after a backoff until it succeeds; a newer
// job for the key replaces the failed one.
func TestWriteQueueRetries(t *testing.T) {
	t.Parallel()
	q := newWriteQueue(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.run(ctx, 2)
	var attempts atomic.Int32
	done := make(chan string, 4)
	q.add("flaky", func(context.Context) error {
		if attempts.Add(1) < 3 {
			return errors.New("conflict")
		}
		done <- "flaky"
		return nil
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("failing job not retried to success; %d attempts", attempts.Load())
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("attempts: got %d; want 3 (two failures, then success)", n)
	}
	var old atomic.Int32
	q.add("stale", func(context.Context) error { old.Add(1); time.Sleep(50 * time.Millisecond); return errors.New("boom") })
	time.Sleep(10 * time.Millisecond) // the failing job is running
	q.add("stale", func(context.Context) error { done <- "newer"; return nil })
	select {
	case got := <-done:
		if got != "newer" {
			t.Errorf("got %s; want the newer job", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("newer job did not run")
	}
	time.Sleep(3 * writeRetryMin)
	if n := old.Load(); n != 1 {
		t.Errorf("the replaced failing job ran %d times; want 1 (not retried over the newer one)", n)
	}
}

func TestWriteQueueRunsInParallel(t *testing.T) {
	t.Parallel()
	q := newWriteQueue(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.run(ctx, writeWorkers)
	var running, peak atomic.Int32
	done := make(chan struct{}, 4)
	for _, k := range []string{"a", "b", "c", "d"} {
		q.add(k, func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
			running.Add(-1)
			done <- struct{}{}
			return nil
		})
	}
	for range 4 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("jobs did not finish")
		}
	}
	if peak.Load() < 2 {
		t.Errorf("peak concurrency: got %d; want >= 2", peak.Load())
	}
}

// TestWriteQueueSpacesKeys: a spaced key's second job waits out the gap, and jobs added
// meanwhile replace it, so only the newest runs; other keys are not held up.
func TestWriteQueueSpacesKeys(t *testing.T) {
	t.Parallel()
	q := newWriteQueue(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.run(ctx, 2)
	const gap = 300 * time.Millisecond
	type run struct {
		name string
		at   time.Time
	}
	runs := make(chan run, 8)
	job := func(name string) func(context.Context) error {
		return func(context.Context) error { runs <- run{name, time.Now()}; return nil }
	}
	start := time.Now()
	q.addSpaced("gw", gap, job("gw1"))
	first := <-runs
	for _, n := range []string{"gw2", "gw3", "gw4"} {
		q.addSpaced("gw", gap, job(n))
	}
	q.add("route", job("route"))
	var got []run
	for range 2 {
		select {
		case r := <-runs:
			got = append(got, r)
		case <-time.After(5 * time.Second):
			t.Fatalf("jobs did not run; ran %v", got)
		}
	}
	if first.name != "gw1" || first.at.Sub(start) > gap/2 {
		t.Errorf("first job: got %s after %v; want gw1 at once", first.name, first.at.Sub(start))
	}
	if got[0].name != "route" || got[0].at.Sub(start) > gap/2 {
		t.Errorf("unspaced key: got %s after %v; want route at once", got[0].name, got[0].at.Sub(start))
	}
	if got[1].name != "gw4" || got[1].at.Sub(first.at) < gap {
		t.Errorf("spaced key: got %s %v after the first; want gw4 (the newest) no sooner than %v", got[1].name, got[1].at.Sub(first.at), gap)
	}
	select {
	case r := <-runs:
		t.Errorf("extra run %s; want gw2 and gw3 replaced by gw4", r.name)
	case <-time.After(gap + 100*time.Millisecond):
	}
}
