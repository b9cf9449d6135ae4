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

// configMapPoll is how often the referenced ConfigMaps are read again for changes.
const configMapPoll = 2 * time.Second

// referencedConfigMaps reads only the ConfigMaps that translation references
// (translate.ConfigMapRefs: the CA certificate bundles of Gateways' frontend client
// certificate validation; BackendTLSPolicy's CA certificates use it too), each with a direct
// GET: the controller neither lists nor watches ConfigMaps, so its RBAC needs only "get" on
// them, and no cache holds every ConfigMap of the cluster. A ConfigMap first referenced is read
// at once; after that, poll reads the referenced ones every configMapPoll and reports whether
// any appeared, changed or went away. It is generic: namespace/name in, ConfigMap out.
type referencedConfigMaps struct {
	api client.Reader

	mu sync.Mutex
	// m holds the last read of each referenced ConfigMap; nil when it did not exist.
	m map[types.NamespacedName]*corev1.ConfigMap
}

// get returns the referenced ConfigMaps that exist, reading those not read before, and
// forgets ConfigMaps no longer referenced.
func (s *referencedConfigMaps) get(ctx context.Context, refs []types.NamespacedName) ([]*corev1.ConfigMap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]*corev1.ConfigMap{}
	}
	want := make(map[types.NamespacedName]bool, len(refs))
	out := make([]*corev1.ConfigMap, 0, len(refs))
	for _, k := range refs {
		want[k] = true
		cm, ok := s.m[k]
		if !ok {
			var err error
			if cm, err = s.read(ctx, k); err != nil {
				return nil, err
			}
			s.m[k] = cm
		}
		if cm != nil {
			out = append(out, cm)
		}
	}
	for k := range s.m {
		if !want[k] {
			delete(s.m, k)
		}
	}
	return out, nil
}

func (s *referencedConfigMaps) read(ctx context.Context, k types.NamespacedName) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	switch err := s.api.Get(ctx, k, cm); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get ConfigMap %s (referenced as a CA certificate): %w", k, err)
	}
	return cm, nil
}

// poll reads every referenced ConfigMap again; changed is true when one appeared, went away
// or has a new resourceVersion.
func (s *referencedConfigMaps) poll(ctx context.Context) (changed bool, err error) {
	s.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		cm, rerr := s.read(ctx, k)
		if rerr != nil {
			err = rerr
			continue
		}
		s.mu.Lock()
		old, still := s.m[k]
		if still && !sameConfigMapVersion(old, cm) {
			s.m[k] = cm
			changed = true
		}
		s.mu.Unlock()
	}
	return changed, err
}

func sameConfigMapVersion(a, b *corev1.ConfigMap) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID && a.ResourceVersion == b.ResourceVersion
}

// run polls until ctx ends, calling onChange after a change.
func (s *referencedConfigMaps) run(ctx context.Context, onChange func(), onError func(error)) {
	t := time.NewTicker(configMapPoll)
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
