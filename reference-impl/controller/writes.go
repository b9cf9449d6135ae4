package controller

import (
	"context"
	"log/slog"
	"sync"
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
}

func newWriteQueue(log *slog.Logger, onError func()) *writeQueue {
	return &writeQueue{log: log, onError: onError, pending: map[string]func(context.Context) error{}, inflight: map[string]bool{}, wake: make(chan struct{}, writeWorkers)}
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

func (q *writeQueue) next() (string, func(context.Context) error, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, k := range q.order {
		if q.inflight[k] {
			continue
		}
		q.order = append(q.order[:i:i], q.order[i+1:]...)
		job := q.pending[k]
		delete(q.pending, k)
		q.inflight[k] = true
		return k, job, true
	}
	return "", nil, false
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

func (q *writeQueue) runOne(ctx context.Context) bool {
	key, job, ok := q.next()
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
	for q.runOne(ctx) {
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
				for q.runOne(ctx) {
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
