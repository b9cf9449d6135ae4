package connid_test

import (
	"context"
	"sync"
	"testing"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/connid"
)

func TestSourceIsUniqueUnderConcurrency(t *testing.T) {
	t.Parallel()
	var s connid.Source
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				id := s.Next()
				mu.Lock()
				if seen[id] {
					t.Errorf("id %q handed out twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 800 {
		t.Errorf("distinct ids: got %d; want 800", len(seen))
	}
	if got := connid.FromContext(connid.WithID(context.Background(), "c9")); got != "c9" {
		t.Errorf("FromContext(WithID(c9)): got %q; want c9", got)
	}
	if got := connid.FromContext(context.Background()); got != "" {
		t.Errorf("FromContext(empty): got %q; want \"\"", got)
	}
}
