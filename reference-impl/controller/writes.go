package controller

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// writeWorkers is how many writes run at once.
const writeWorkers = 8

// Retries of a failed write back off per object from writeRetryMin to writeRetryMax.
const (
	writeRetryMin = 100 * time.Millisecond
	writeRetryMax = 10 * time.Second
)

// writeQueue runs the API writes a reconcile decides on (statuses, proxy Deployments and
// Services) off the reconcile path, so the next configuration change is translated and
// published without waiting for them. It is client-go's workqueue, the one controller-runtime
// runs reconciles on, keyed by object: a key waits in the queue once however often it is
// added, two workers never hold the same key (so never race on one object), a failed write is
// retried with per-key backoff, and a spaced key waits out its gap (AddAfter). The queue holds
// keys; pending holds the latest job per key (only the latest desired state matters).
type writeQueue struct {
	log *slog.Logger
	q   workqueue.TypedRateLimitingInterface[string]
	now func() time.Time

	mu      sync.Mutex
	pending map[string]func(context.Context) error
	// gaps holds the minimum spacing of keys added with addSpaced, and started when each of
	// them last started.
	gaps    map[string]time.Duration
	started map[string]time.Time
}

func newWriteQueue(log *slog.Logger) *writeQueue {
	return &writeQueue{
		log: log, now: time.Now,
		q: workqueue.NewTypedRateLimitingQueue[string](
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](writeRetryMin, writeRetryMax)),
		pending: map[string]func(context.Context) error{}, gaps: map[string]time.Duration{}, started: map[string]time.Time{},
	}
}

// addSpaced is add for a key whose writes should start at most once per gap: a job arriving
// sooner waits, and newer jobs replace it meanwhile, so a burst of changes costs one write
// per gap instead of one per change. A Gateway's status changes with every route attached
// (attachedRoutes); writing it per route adds an API write, and its watch events, to every
// route change while the next change is being propagated.
func (q *writeQueue) addSpaced(key string, gap time.Duration, job func(context.Context) error) {
	q.mu.Lock()
	q.gaps[key] = gap
	q.pending[key] = job
	wait := q.started[key].Add(gap).Sub(q.now())
	q.mu.Unlock()
	if wait > 0 {
		q.q.AddAfter(key, wait)
		return
	}
	q.q.Add(key)
}

// add schedules job under key, replacing a pending job with the same key.
func (q *writeQueue) add(key string, job func(context.Context) error) {
	q.mu.Lock()
	q.pending[key] = job
	q.mu.Unlock()
	q.q.Add(key)
}

// take returns key's pending job to run now, or nil when there is none (a newer add already
// ran it) or, unless ignoreGaps, its gap has not passed (it is queued again for then).
func (q *writeQueue) take(key string, ignoreGaps bool) func(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	job := q.pending[key]
	if job == nil {
		return nil
	}
	if gap, ok := q.gaps[key]; ok {
		now := q.now()
		if wait := q.started[key].Add(gap).Sub(now); wait > 0 && !ignoreGaps {
			q.q.AddAfter(key, wait)
			return nil
		}
		q.started[key] = now
	}
	delete(q.pending, key)
	return job
}

// runOne runs key's job; a failure is retried after a backoff unless a newer job came.
func (q *writeQueue) runOne(ctx context.Context, key string, ignoreGaps, retry bool) {
	job := q.take(key, ignoreGaps)
	if job == nil {
		return
	}
	err := job(ctx)
	if err == nil {
		q.q.Forget(key)
		return
	}
	if ctx.Err() != nil {
		return
	}
	q.log.Error("write failed", "object", key, "retried", q.q.NumRequeues(key), "error", err)
	if !retry {
		return
	}
	q.mu.Lock()
	if _, newer := q.pending[key]; !newer {
		q.pending[key] = job
	}
	q.mu.Unlock()
	q.q.AddRateLimited(key)
}

// drain runs every job queued or waiting on the caller's goroutine, ignoring gaps and not
// retrying failures (tests).
func (q *writeQueue) drain(ctx context.Context) {
	for q.q.Len() > 0 {
		key, _ := q.q.Get()
		q.runOne(ctx, key, true, false)
		q.q.Done(key)
	}
	q.mu.Lock()
	keys := make([]string, 0, len(q.pending))
	for k := range q.pending {
		keys = append(keys, k)
	}
	q.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		q.runOne(ctx, k, true, false)
	}
}

// run processes jobs with n workers until ctx ends.
func (q *writeQueue) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, shutdown := q.q.Get()
				if shutdown {
					return
				}
				q.runOne(ctx, key, false, true)
				q.q.Done(key)
			}
		}()
	}
	<-ctx.Done()
	q.q.ShutDown()
	wg.Wait()
}
