package controller

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// refPoll is how often the referenced objects are read again for changes.
const refPoll = 2 * time.Second

// referencedSecrets reads the Secrets listeners reference (translate.SecretRefs: listener
// certificates, the Gateway's backend client certificate).
type referencedSecrets = referenced[corev1.Secret, *corev1.Secret]

// referencedConfigMaps reads the ConfigMaps translation references (translate.ConfigMapRefs:
// the CA certificate bundles of frontend client certificate validation and of BackendTLSPolicy).
type referencedConfigMaps = referenced[corev1.ConfigMap, *corev1.ConfigMap]

// referenced reads only the objects that translation references, each with a direct GET: the
// controller neither lists nor watches them, so its RBAC needs only "get" on them, and no
// cache holds every Secret or ConfigMap of the cluster. An object first referenced is read at
// once; after that, poll reads the referenced ones every refPoll and reports whether any
// appeared, changed or went away.
type referenced[T any, P interface {
	*T
	client.Object
}] struct {
	api client.Reader

	mu sync.Mutex
	// m holds the last read of each referenced object; nil when it did not exist.
	m map[types.NamespacedName]P
}

// get returns the referenced objects that exist, reading those not read before, and forgets
// objects no longer referenced.
func (s *referenced[T, P]) get(ctx context.Context, refs []types.NamespacedName) ([]P, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]P{}
	}
	want := make(map[types.NamespacedName]bool, len(refs))
	out := make([]P, 0, len(refs))
	for _, k := range refs {
		want[k] = true
		obj, ok := s.m[k]
		if !ok {
			var err error
			if obj, err = s.read(ctx, k); err != nil {
				return nil, err
			}
			s.m[k] = obj
		}
		if obj != nil {
			out = append(out, obj)
		}
	}
	for k := range s.m {
		if !want[k] {
			delete(s.m, k)
		}
	}
	return out, nil
}

func (s *referenced[T, P]) read(ctx context.Context, k types.NamespacedName) (P, error) {
	obj := P(new(T))
	switch err := s.api.Get(ctx, k, obj); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get %s %s (referenced by a Gateway): %w", reflect.TypeFor[T]().Name(), k, err)
	}
	return obj, nil
}

// poll reads every referenced object again; changed is true when one appeared, went away or
// has a new resourceVersion.
func (s *referenced[T, P]) poll(ctx context.Context) (changed bool, err error) {
	s.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		obj, rerr := s.read(ctx, k)
		if rerr != nil {
			err = rerr
			continue
		}
		s.mu.Lock()
		old, still := s.m[k]
		if still && !sameVersion(old, obj) {
			s.m[k] = obj
			changed = true
		}
		s.mu.Unlock()
	}
	return changed, err
}

// sameVersion compares two reads of one object; nil is an object that did not exist.
func sameVersion[T any, P interface {
	*T
	client.Object
}](a, b P) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GetUID() == b.GetUID() && a.GetResourceVersion() == b.GetResourceVersion()
}

// run polls until ctx ends, calling onChange after a change.
func (s *referenced[T, P]) run(ctx context.Context, onChange func(), onError func(error)) {
	t := time.NewTicker(refPoll)
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
