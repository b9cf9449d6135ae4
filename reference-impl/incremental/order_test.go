package incremental

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// TestSortedByAgeFollowsChanges walks random additions, deletions and shuffles (the cache lists
// in no particular order) and checks every call's result against a full sort, including the
// ties (same creation second) that namespace/name decide.
func TestSortedByAgeFollowsChanges(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	m := New()
	next := 0
	newRoute := func() *gwv1.HTTPRoute {
		next++
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{
			// Names are unique, as in one cluster; ties on the creation second are common.
			Namespace: fmt.Sprintf("ns-%d", rng.IntN(3)), Name: fmt.Sprintf("r-%03d-%d", rng.IntN(1000), next),
			UID:               types.UID(fmt.Sprintf("uid-%d", next)),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, rng.IntN(20), 0, time.UTC)),
		}}
	}
	var routes []*gwv1.HTTPRoute
	for range 200 {
		routes = append(routes, newRoute())
	}
	for step := range 500 {
		switch op := rng.IntN(10); {
		case op < 5:
			routes = append(routes, newRoute())
		case op < 8 && len(routes) > 0:
			i := rng.IntN(len(routes))
			routes = slices.Delete(routes, i, i+1)
		case op == 8:
			for range 40 { // a burst: more than the incremental path takes
				routes = append(routes, newRoute())
			}
		}
		rng.Shuffle(len(routes), func(i, j int) { routes[i], routes[j] = routes[j], routes[i] })
		got := sortedByAge(m, kindHTTP, routes)
		want := slices.Clone(routes)
		slices.SortFunc(want, translate.ByAge[*gwv1.HTTPRoute])
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: incremental order differs from a full sort", step)
		}
	}
	// A route without a UID (hand-built input) still sorts.
	routes = append(routes, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "b"}})
	got := sortedByAge(m, kindHTTP, routes)
	if !slices.IsSortedFunc(got, translate.ByAge[*gwv1.HTTPRoute]) || len(got) != len(routes) {
		t.Fatalf("routes with a UID-less one are not sorted")
	}
}

// TestSortedByAgeNoticesChangedFields: a route whose order-relevant fields changed under the same UID (which
// the API server does not allow) is still sorted correctly.
func TestSortedByAgeNoticesChangedFields(t *testing.T) {
	t.Parallel()
	m := New()
	mk := func(name string, sec int) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC))}}
	}
	routes := []*gwv1.HTTPRoute{mk("a", 1), mk("b", 2), mk("c", 3)}
	sortedByAge(m, kindHTTP, routes)
	routes[0] = mk("a", 9)
	got := sortedByAge(m, kindHTTP, routes)
	if names := []string{got[0].Name, got[1].Name, got[2].Name}; !slices.Equal(names, []string{"b", "c", "a"}) {
		t.Fatalf("order %v; want [b c a]", names)
	}
}
