package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// writeWorkers is how many writes run at once; each add wakes one idle worker.
const writeWorkers = 8

// writeQueue runs the API writes a reconcile decides on (statuses, proxy Deployments and
// Services) off the reconcile path, so the next configuration change is translated and
// published without waiting for them. Jobs are keyed by object: a newer job for the same
// object replaces a pending one (only the latest desired state matters).
type writeQueue struct {
	log     *slog.Logger
	onError func()

	mu      sync.Mutex
	pending map[string]func(context.Context) error
	order   []string
	// inflight keys are being written; a newer job for one waits until it is done, so two
	// workers never race (and conflict) on one object.
	inflight map[string]bool
	wake     chan struct{}
	// gaps holds the minimum spacing of keys added with addSpaced, and started when each of
	// them last started; timer wakes a worker when a held-back job becomes due.
	gaps    map[string]time.Duration
	started map[string]time.Time
	timer   *time.Timer
	now     func() time.Time
}

func newWriteQueue(log *slog.Logger, onError func()) *writeQueue {
	return &writeQueue{log: log, onError: onError, pending: map[string]func(context.Context) error{}, inflight: map[string]bool{},
		wake: make(chan struct{}, writeWorkers), gaps: map[string]time.Duration{}, started: map[string]time.Time{}, now: time.Now}
}

// addSpaced is add for a key whose writes should start at most once per gap: a job arriving
// sooner waits, and newer jobs replace it meanwhile, so a burst of changes costs one write
// per gap instead of one per change. A Gateway's status changes with every route attached
// (attachedRoutes); writing it per route adds an API write, and its watch events, to every
// route change while the next change is being propagated.
func (q *writeQueue) addSpaced(key string, gap time.Duration, job func(context.Context) error) {
	q.mu.Lock()
	q.gaps[key] = gap
	q.mu.Unlock()
	q.add(key, job)
}

// add schedules job under key, replacing a pending job with the same key.
func (q *writeQueue) add(key string, job func(context.Context) error) {
	q.mu.Lock()
	if _, ok := q.pending[key]; !ok {
		q.order = append(q.order, key)
	}
	q.pending[key] = job
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes the first pending job that is not in flight and, when spaced, is due.
// ignoreGaps (drain, in tests) takes spaced jobs at once.
func (q *writeQueue) next(ignoreGaps bool) (string, func(context.Context) error, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	var due time.Time
	for i, k := range q.order {
		if q.inflight[k] {
			continue
		}
		if gap, ok := q.gaps[k]; ok && !ignoreGaps {
			if at := q.started[k].Add(gap); at.After(now) {
				if due.IsZero() || at.Before(due) {
					due = at
				}
				continue
			}
			q.started[k] = now
		}
		q.order = append(q.order[:i:i], q.order[i+1:]...)
		job := q.pending[k]
		delete(q.pending, k)
		q.inflight[k] = true
		return k, job, true
	}
	if !due.IsZero() {
		q.wakeAt(due.Sub(now))
	}
	return "", nil, false
}

// wakeAt wakes a worker after d, unless a wake-up is already armed. q.mu must be held.
func (q *writeQueue) wakeAt(d time.Duration) {
	if q.timer != nil {
		return
	}
	q.timer = time.AfterFunc(d, func() {
		q.mu.Lock()
		q.timer = nil
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	})
}

func (q *writeQueue) done(key string) {
	q.mu.Lock()
	delete(q.inflight, key)
	_, again := q.pending[key]
	q.mu.Unlock()
	if again {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *writeQueue) runOne(ctx context.Context, ignoreGaps bool) bool {
	key, job, ok := q.next(ignoreGaps)
	if !ok {
		return false
	}
	defer q.done(key)
	if err := job(ctx); err != nil && ctx.Err() == nil {
		q.log.Error("write failed; will retry with the next reconcile", "object", key, "error", err)
		if q.onError != nil {
			q.onError()
		}
	}
	return true
}

// drain runs every pending job on the caller's goroutine (tests).
func (q *writeQueue) drain(ctx context.Context) {
	for q.runOne(ctx, true) {
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
				for q.runOne(ctx, false) {
				}
				select {
				case <-ctx.Done():
					return
				case <-q.wake:
				}
			}
		}()
	}
	wg.Wait()
}
