package incremental

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// sortedByAge returns a copy of routes in translate.ByAge order (the Gateway API's precedence:
// oldest first, then namespace/name).
//
// The controller's cache lists objects in no particular order, and sorting 1,000 routes on
// every reconcile took ~0.5-1 ms of the create-to-serving path. The previous call's order (by
// UID) is kept per kind: the routes still present keep their relative order (creationTimestamp, namespace and name never change for a UID), and only the new ones are
// sorted and inserted. The result is checked to be sorted, and sorted in full when it is not,
// so a wrong assumption costs time, never order. Routes without a UID (hand-built input) or
// many new routes at once take the full sort.
func sortedByAge[T metav1.Object](m *Translator, kind string, routes []T) []T {
	out := slices.Clone(routes)
	full := func() []T {
		slices.SortFunc(out, translate.ByAge[T])
		rememberOrder(m, kind, out)
		return out
	}
	prev := m.order[kind]
	if len(prev) == 0 {
		return full()
	}
	byUID := make(map[types.UID]int, len(routes))
	for i, r := range routes {
		uid := r.GetUID()
		if _, dup := byUID[uid]; dup || uid == "" {
			return full()
		}
		byUID[uid] = i
	}
	out = out[:0]
	taken := make([]bool, len(routes))
	for _, uid := range prev {
		if i, ok := byUID[uid]; ok {
			out = append(out, routes[i])
			taken[i] = true
		}
	}
	fresh := len(routes) - len(out)
	if fresh > 16 && fresh > len(routes)/8 {
		out = append(out[:0], routes...)
		return full()
	}
	if !slices.IsSortedFunc(out, translate.ByAge[T]) {
		out = append(out[:0], routes...)
		return full()
	}
	for i, r := range routes {
		if taken[i] {
			continue
		}
		at, _ := slices.BinarySearchFunc(out, r, translate.ByAge[T])
		out = slices.Insert(out, at, r)
	}
	rememberOrder(m, kind, out)
	return out
}

// rememberOrder records the UIDs of sorted for the next call; a route without a UID makes
// the next call sort in full.
func rememberOrder[T metav1.Object](m *Translator, kind string, sorted []T) {
	uids := m.order[kind][:0]
	for _, r := range sorted {
		if r.GetUID() == "" {
			uids = nil
			break
		}
		uids = append(uids, r.GetUID())
	}
	m.order[kind] = uids
}
