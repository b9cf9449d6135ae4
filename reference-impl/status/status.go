package status

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Writer writes statuses through Client. Now is the clock for lastTransitionTime (time.Now if
// nil).
type Writer struct {
	Client client.Client
	// Reader serves the first read of each write (normally the manager's cache, which makes
	// no-op checks free); nil means Client.
	Reader client.Reader
	// APIReader serves the re-read after a conflict, when the cache is known to be stale; nil
	// means Client.
	APIReader client.Reader
	Now       func() time.Time

	// written holds, for a short while, the objects this Writer wrote (see fresher).
	mu      sync.Mutex
	written map[writtenKey]writtenObj

	// seen holds the routes RouteCurrent found current.
	seenMu sync.Mutex
	seen   seen
}

type writtenKey struct {
	typ reflect.Type
	key types.NamespacedName
}

type writtenObj struct {
	// older are resourceVersions obj is newer than: the one its write replaced and, when that
	// write started from an earlier entry, that entry's.
	older []string
	obj   client.Object
	at    time.Time
}

// writtenTTL bounds how long a written object is kept: the cache catches up within
// milliseconds, after which the entry is useless. Entries are full objects, so while thousands
// of routes get their first status (over a hundred writes a second) they must not pile up; a
// cache slower than this only costs the conflict and re-read that fresher otherwise avoids.
const writtenTTL = 2 * time.Second

// fresher replaces obj, just read from the cache, with the object this Writer wrote over it,
// when the cache has not seen that write yet (obj still has the resourceVersion the write
// replaced). Without it, a second status change of an object soon after the first would
// start from the stale cached copy: a write bound to fail with a conflict, then a re-read
// from the API server; with routes created every few milliseconds a quarter of the route
// status writes went that way.
// It reports the resourceVersions the substituted object is newer than (nil: no substitution).
func (w *Writer) fresher(key types.NamespacedName, obj client.Object) []string {
	k := writtenKey{reflect.TypeOf(obj), key}
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.written[k]
	if !ok {
		return nil
	}
	if rv := obj.GetResourceVersion(); rv == "" || !slices.Contains(e.older, rv) {
		delete(w.written, k) // the cache has caught up (or moved past us)
		return nil
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(e.obj.DeepCopyObject()).Elem())
	return e.older
}

// remember records obj as written over resourceVersion from, which itself was newer than
// older.
func (w *Writer) remember(key types.NamespacedName, from string, older []string, obj client.Object) {
	if from == "" || obj.GetResourceVersion() == "" || obj.GetResourceVersion() == from {
		return
	}
	if len(older) > 7 {
		older = older[len(older)-7:]
	}
	older = append(slices.Clone(older), from)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written == nil {
		w.written = map[writtenKey]writtenObj{}
	}
	if len(w.written) > 128 {
		for k, e := range w.written {
			if now.Sub(e.at) > writtenTTL {
				delete(w.written, k)
			}
		}
	}
	w.written[writtenKey{reflect.TypeOf(obj), key}] = writtenObj{older: older, obj: obj.DeepCopyObject().(client.Object), at: now}
}

func (w *Writer) now() metav1.Time {
	if w.Now != nil {
		return metav1.NewTime(w.Now().Truncate(time.Second))
	}
	return metav1.NewTime(time.Now().Truncate(time.Second))
}

// MergeConditions returns want with each condition's LastTransitionTime taken from have when
// its status is unchanged, and now otherwise.
func MergeConditions(have, want []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := make([]metav1.Condition, len(want))
	for i, c := range want {
		c.LastTransitionTime = now
		for _, h := range have {
			if h.Type == c.Type && h.Status == c.Status {
				c.LastTransitionTime = h.LastTransitionTime
			}
		}
		out[i] = c
	}
	return out
}

// update applies mutate to a fresh copy of the object and writes it if anything changed; on
// conflict it re-reads and tries again.
func update[T client.Object](ctx context.Context, w *Writer, key types.NamespacedName, obj T, mutate func(T) bool) (bool, error) {
	wrote := false
	first := true
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		rd := w.Reader
		if !first {
			rd = w.APIReader
		}
		if rd == nil {
			rd = w.Client
		}
		cached := first
		first = false
		if err := rd.Get(ctx, key, obj); err != nil {
			return err
		}
		var older []string
		if cached {
			older = w.fresher(key, obj)
		}
		if !mutate(obj) {
			return nil
		}
		from := obj.GetResourceVersion()
		if err := w.Client.Status().Update(ctx, obj); err != nil {
			return err
		}
		w.remember(key, from, older, obj)
		wrote = true
		return nil
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update status of %T %s: %w", obj, key, err)
	}
	return wrote, nil
}

// GatewayClass writes a GatewayClass status; it reports whether a write happened.
func (w *Writer) GatewayClass(ctx context.Context, name string, want gwv1.GatewayClassStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, types.NamespacedName{Name: name}, &gwv1.GatewayClass{}, func(o *gwv1.GatewayClass) bool {
		next := want.DeepCopy()
		next.Conditions = MergeConditions(o.Status.Conditions, next.Conditions, now)
		if equality.Semantic.DeepEqual(&o.Status, next) {
			return false
		}
		o.Status = *next
		return true
	})
}

// Gateway writes a Gateway status.
func (w *Writer) Gateway(ctx context.Context, key types.NamespacedName, want gwv1.GatewayStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.Gateway{}, func(o *gwv1.Gateway) bool {
		next := want.DeepCopy()
		next.Conditions = MergeConditions(o.Status.Conditions, next.Conditions, now)
		for i := range next.Listeners {
			var have []metav1.Condition
			for _, l := range o.Status.Listeners {
				if l.Name == next.Listeners[i].Name {
					have = l.Conditions
				}
			}
			next.Listeners[i].Conditions = MergeConditions(have, next.Listeners[i].Conditions, now)
		}
		if equality.Semantic.DeepEqual(&o.Status, next) {
			return false
		}
		o.Status = *next
		return true
	})
}

// mergeParents replaces the parent statuses written by controller with want, keeping other
// controllers' entries, and reports whether anything changed.
func mergeParents(have []gwv1.RouteParentStatus, want []gwv1.RouteParentStatus, controller string, now metav1.Time) ([]gwv1.RouteParentStatus, bool) {
	var out []gwv1.RouteParentStatus
	var mine []gwv1.RouteParentStatus
	for _, p := range have {
		if string(p.ControllerName) == controller {
			mine = append(mine, p)
		} else {
			out = append(out, p)
		}
	}
	var next []gwv1.RouteParentStatus
	for _, p := range want {
		p := *p.DeepCopy()
		var prev []metav1.Condition
		for _, h := range mine {
			if equality.Semantic.DeepEqual(h.ParentRef, p.ParentRef) {
				prev = h.Conditions
			}
		}
		p.Conditions = MergeConditions(prev, p.Conditions, now)
		next = append(next, p)
	}
	if equality.Semantic.DeepEqual(mine, next) || (len(mine) == 0 && len(next) == 0) {
		return have, false
	}
	out = append(out, next...)
	if out == nil {
		// status.parents is required: clearing our last entry must write [], not null (the API
		// server rejects null with 422, and the retry would repeat for as long as the route
		// exists).
		out = []gwv1.RouteParentStatus{}
	}
	return out, true
}

// HTTPRoute writes the parents of an HTTPRoute owned by controller.
func (w *Writer) HTTPRoute(ctx context.Context, key types.NamespacedName, controller string, want []gwv1.RouteParentStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.HTTPRoute{}, func(o *gwv1.HTTPRoute) bool {
		var changed bool
		o.Status.Parents, changed = mergeParents(o.Status.Parents, want, controller, now)
		return changed
	})
}

// GRPCRoute writes the parents of a GRPCRoute owned by controller.
func (w *Writer) GRPCRoute(ctx context.Context, key types.NamespacedName, controller string, want []gwv1.RouteParentStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.GRPCRoute{}, func(o *gwv1.GRPCRoute) bool {
		var changed bool
		o.Status.Parents, changed = mergeParents(o.Status.Parents, want, controller, now)
		return changed
	})
}

// UDPRoute writes the parents of a UDPRoute owned by controller.
func (w *Writer) UDPRoute(ctx context.Context, key types.NamespacedName, controller string, want []gwv1.RouteParentStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.UDPRoute{}, func(o *gwv1.UDPRoute) bool {
		var changed bool
		o.Status.Parents, changed = mergeParents(o.Status.Parents, want, controller, now)
		return changed
	})
}

// TLSRoute writes the parents of a TLSRoute owned by controller.
func (w *Writer) TLSRoute(ctx context.Context, key types.NamespacedName, controller string, want []gwv1.RouteParentStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.TLSRoute{}, func(o *gwv1.TLSRoute) bool {
		var changed bool
		o.Status.Parents, changed = mergeParents(o.Status.Parents, want, controller, now)
		return changed
	})
}

// TCPRoute writes the parents of a TCPRoute owned by controller.
func (w *Writer) TCPRoute(ctx context.Context, key types.NamespacedName, controller string, want []gwv1.RouteParentStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.TCPRoute{}, func(o *gwv1.TCPRoute) bool {
		var changed bool
		o.Status.Parents, changed = mergeParents(o.Status.Parents, want, controller, now)
		return changed
	})
}
