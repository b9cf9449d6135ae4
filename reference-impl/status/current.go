package status

import (
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The Writer's no-op checks come in two steps: RouteCurrent, on the reconcile path, decides
// from the cached route whether a write need be queued at all; a queued write's update
// compares again against the object it read (the merge in each write method) and writes only
// a change, retrying on conflict.

// RouteCurrent reports whether a route's cached status (have, at resourceVersion rv) already
// carries want as controller's parents, so that no write is needed. It remembers routes found
// current (see seen), so an unchanged route is not compared again. Call it from one goroutine,
// between BeginPass and EndPass when the routes passed are all of them.
func (w *Writer) RouteCurrent(kind string, key types.NamespacedName, rv string, have func() []gwv1.RouteParentStatus, want []gwv1.RouteParentStatus, controller string) bool {
	w.seenMu.Lock()
	defer w.seenMu.Unlock()
	if w.seen.upToDate(kind, key, rv, want) {
		return true
	}
	if parentsEqual(have(), want, controller) {
		w.seen.record(kind, key, rv, want)
		return true
	}
	return false
}

// BeginPass starts a pass over every route; EndPass forgets the routes it did not see.
func (w *Writer) BeginPass() {
	w.seenMu.Lock()
	w.seen.pass++
	w.seenMu.Unlock()
}

// EndPass: see BeginPass.
func (w *Writer) EndPass() {
	w.seenMu.Lock()
	w.seen.end()
	w.seenMu.Unlock()
}

// seen remembers, per route, the resourceVersion and the desired parents (by identity:
// incremental.Translator hands out the same slice while a route's result is unchanged) for which the
// cached route already carried our status. A reconcile then compares only the routes that
// changed instead of all of them (with 1,000 routes the comparisons took ~1 ms of every
// reconcile on the propagation path).
type seen struct {
	pass    uint64
	entries map[seenKey]seenEntry
}

type seenKey struct {
	kind string
	key  types.NamespacedName
}

type seenEntry struct {
	rv   string
	want *gwv1.RouteParentStatus // &want[0]
	n    int
	pass uint64
}

func (s *seen) upToDate(kind string, key types.NamespacedName, rv string, want []gwv1.RouteParentStatus) bool {
	if rv == "" || len(want) == 0 {
		return false
	}
	k := seenKey{kind, key}
	e, ok := s.entries[k]
	if !ok || e.rv != rv || e.want != &want[0] || e.n != len(want) {
		return false
	}
	e.pass = s.pass
	s.entries[k] = e
	return true
}

func (s *seen) record(kind string, key types.NamespacedName, rv string, want []gwv1.RouteParentStatus) {
	if rv == "" || len(want) == 0 {
		return
	}
	if s.entries == nil {
		s.entries = map[seenKey]seenEntry{}
	}
	s.entries[seenKey{kind, key}] = seenEntry{rv: rv, want: &want[0], n: len(want), pass: s.pass}
}

// end drops the routes the pass did not see.
func (s *seen) end() {
	for k, e := range s.entries {
		if e.pass != s.pass {
			delete(s.entries, k)
		}
	}
}

// parentsEqual is a cheap pre-check against the cached object: same conditions (ignoring
// transition times) for our parents means no write is needed.
func parentsEqual(have, want []gwv1.RouteParentStatus, controller string) bool {
	var mine []gwv1.RouteParentStatus
	for _, p := range have {
		if string(p.ControllerName) == controller {
			mine = append(mine, p)
		}
	}
	if len(mine) != len(want) {
		return false
	}
	for i := range want {
		a, b := mine[i], want[i]
		if len(a.Conditions) != len(b.Conditions) || !refEqual(a.ParentRef, b.ParentRef) {
			return false
		}
		for j := range a.Conditions {
			x, y := a.Conditions[j], b.Conditions[j]
			if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
				return false
			}
		}
	}
	return true
}

func refEqual(a, b gwv1.ParentReference) bool {
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return s((*string)(a.Group)) == s((*string)(b.Group)) && s((*string)(a.Kind)) == s((*string)(b.Kind)) &&
		s((*string)(a.Namespace)) == s((*string)(b.Namespace)) && a.Name == b.Name &&
		s((*string)(a.SectionName)) == s((*string)(b.SectionName)) &&
		((a.Port == nil && b.Port == nil) || (a.Port != nil && b.Port != nil && *a.Port == *b.Port))
}
