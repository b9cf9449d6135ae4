package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// secretPoll is how often the Secrets listeners reference are read again for changes.
const secretPoll = 2 * time.Second

// referencedSecrets reads only the Secrets that listeners reference (translate.SecretRefs),
// each with a direct GET: the controller neither lists nor watches Secrets, so its RBAC needs
// only "get" on them. A Secret first referenced is read at once; after that, poll reads the
// referenced ones every secretPoll and reports whether any appeared, changed or went away.
type referencedSecrets struct {
	api client.Reader

	mu sync.Mutex
	// m holds the last read of each referenced Secret; nil when it did not exist.
	m map[types.NamespacedName]*corev1.Secret
}

// get returns the referenced Secrets that exist, reading those not read before, and forgets
// Secrets no longer referenced.
func (s *referencedSecrets) get(ctx context.Context, refs []types.NamespacedName) ([]*corev1.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]*corev1.Secret{}
	}
	want := make(map[types.NamespacedName]bool, len(refs))
	out := make([]*corev1.Secret, 0, len(refs))
	for _, k := range refs {
		want[k] = true
		sec, ok := s.m[k]
		if !ok {
			var err error
			if sec, err = s.read(ctx, k); err != nil {
				return nil, err
			}
			s.m[k] = sec
		}
		if sec != nil {
			out = append(out, sec)
		}
	}
	for k := range s.m {
		if !want[k] {
			delete(s.m, k)
		}
	}
	return out, nil
}

func (s *referencedSecrets) read(ctx context.Context, k types.NamespacedName) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	switch err := s.api.Get(ctx, k, sec); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get Secret %s (referenced by a listener): %w", k, err)
	}
	return sec, nil
}

// poll reads every referenced Secret again; changed is true when one appeared, went away or
// has a new resourceVersion.
func (s *referencedSecrets) poll(ctx context.Context) (changed bool, err error) {
	s.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		sec, rerr := s.read(ctx, k)
		if rerr != nil {
			err = rerr
			continue
		}
		s.mu.Lock()
		old, still := s.m[k]
		if still && !sameVersion(old, sec) {
			s.m[k] = sec
			changed = true
		}
		s.mu.Unlock()
	}
	return changed, err
}

func sameVersion(a, b *corev1.Secret) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID && a.ResourceVersion == b.ResourceVersion
}

// run polls until ctx ends, calling onChange after a change.
func (s *referencedSecrets) run(ctx context.Context, onChange func(), onError func(error)) {
	t := time.NewTicker(secretPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.poll(ctx)
		if err != nil && ctx.Err() == nil {
			onError(err)
		}
		if changed {
			onChange()
		}
	}
}
