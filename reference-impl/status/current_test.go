package status

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestRouteCurrent: a route whose cached parents match is current without a second
// comparison while its resourceVersion and desired parents stay; anything else compares
// again, and a pass without the route forgets it.
func TestRouteCurrent(t *testing.T) {
	t.Parallel()
	const ctrl = "gatecheck.dev/reference"
	want := []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: ctrl,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 1}}}}
	other := []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "someone/else"}}
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	var w Writer
	compared := 0
	have := func(p []gwv1.RouteParentStatus) func() []gwv1.RouteParentStatus {
		return func() []gwv1.RouteParentStatus { compared++; return p }
	}
	for i, step := range []struct {
		name             string
		rv               string
		have             []gwv1.RouteParentStatus
		current, compare bool
		pass             bool // begin and end an empty pass first
	}{
		{"matching", "1", append(other, want...), true, true, false},
		{"remembered", "1", nil, true, false, false},
		{"new resourceVersion, stale status", "2", other, false, true, false},
		{"matching again", "3", want, true, true, false},
		{"forgotten after a pass without it", "3", want, true, true, true},
	} {
		if step.pass {
			w.BeginPass()
			w.EndPass()
		}
		compared = 0
		got := w.RouteCurrent("HTTPRoute", key, step.rv, have(step.have), want, ctrl)
		if got != step.current || (compared > 0) != step.compare {
			t.Errorf("step %d %s: current=%v compared=%d; want current=%v compared=%v", i, step.name, got, compared, step.current, step.compare)
		}
	}
}
