// Package connid hands out process-unique connection ids so that an echo or a record can say
// which client connection carried it (e.g. to tell keep-alive reuse from a new connection).
package connid

import (
	"context"
	"strconv"
	"sync/atomic"
)

// Source generates ids "c1", "c2", ... in accept order. The zero value is ready to use.
type Source struct {
	n atomic.Uint64
}

// Next returns the next id.
func (s *Source) Next() string {
	return "c" + strconv.FormatUint(s.n.Add(1), 10)
}

type ctxKey struct{}

// WithID returns ctx carrying connection id id.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the connection id stored by WithID, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}
