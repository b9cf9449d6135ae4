package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteQueueCoalescesAndRetries(t *testing.T) {
	t.Parallel()
	var failures atomic.Int32
	q := newWriteQueue(slog.New(slog.DiscardHandler), func() { failures.Add(1) })
	var ran []string
	q.add("a", func(context.Context) error { ran = append(ran, "a1"); return nil })
	q.add("b", func(context.Context) error { ran = append(ran, "b"); return errors.New("boom") })
	q.add("a", func(context.Context) error { ran = append(ran, "a2"); return nil })
	q.drain(context.Background())
	if len(ran) != 2 || ran[0] != "a2" || ran[1] != "b" {
		t.Errorf("ran %v; want [a2 b] (the newer job for a replaces the pending one, order kept)", ran)
	}
	if failures.Load() != 1 {
		t.Errorf("onError calls: got %d; want 1", failures.Load())
	}
}

func TestWriteQueueRunsInParallel(t *testing.T) {
	t.Parallel()
	q := newWriteQueue(slog.New(slog.DiscardHandler), nil)
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
