package translate

import (
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestPiecesAreIndependent: the pieces an incremental layer builds on are pure. Every golden
// input's routes are translated against one Env at once, from concurrent goroutines and
// newest first, twice; filed in precedence order, the result must equal Translate's. A route
// result that depended on the routes translated before it, or an Env changed by a call, would
// show here.
func TestPiecesAreIndependent(t *testing.T) {
	eachGolden(t, func(t *testing.T, inPath string) {
		in, _ := loadInput(t, inPath)
		want, err := yaml.Marshal(render(Translate(in), nil))
		if err != nil {
			t.Fatal(err)
		}
		var routes []metav1.Object
		add := func(rs []metav1.Object) { routes = append(routes, rs...) }
		add(sortedObjects(in.HTTPRoutes))
		add(sortedObjects(in.GRPCRoutes))
		add(sortedObjects(in.TCPRoutes))
		add(sortedObjects(in.UDPRoutes))
		add(sortedObjects(in.TLSRoutes))
		e := NewEnv(in)
		for pass := range 2 {
			results := make([]RouteResult, len(routes))
			var wg sync.WaitGroup
			for i := len(routes) - 1; i >= 0; i-- {
				wg.Go(func() { results[i] = e.Route(routes[i]) })
			}
			wg.Wait()
			got, err := yaml.Marshal(render(e.Output(Attach(results), results), nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Fatalf("pass %d: pieces differ from Translate (-want +got):\n%s", pass, diff)
			}
		}
	})
}

func sortedObjects[T metav1.Object](rs []T) []metav1.Object {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, ByAge[T])
	out := make([]metav1.Object, len(sorted))
	for i, r := range sorted {
		out[i] = r
	}
	return out
}
