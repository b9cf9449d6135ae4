package status

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestMergeAncestors(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	entry := func(name, controller string) gwv1.PolicyAncestorStatus {
		return gwv1.PolicyAncestorStatus{AncestorRef: gwv1.ParentReference{Name: gwv1.ObjectName(name)}, ControllerName: gwv1.GatewayController(controller),
			Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: now}}}
	}
	t.Run("no-op keeps the list", func(t *testing.T) {
		have := []gwv1.PolicyAncestorStatus{entry("a", "other"), entry("gw", "me")}
		if _, changed := mergeAncestors(have, []gwv1.PolicyAncestorStatus{entry("gw", "me")}, "me", now); changed {
			t.Fatal("changed: got true; want false for the same entry")
		}
	})
	t.Run("clearing ours writes an empty list", func(t *testing.T) {
		out, changed := mergeAncestors([]gwv1.PolicyAncestorStatus{entry("gw", "me")}, nil, "me", now)
		if !changed || out == nil || len(out) != 0 {
			t.Fatalf("got %v, changed %v; want [] and true", out, changed)
		}
	})
	t.Run("at most 16, others first", func(t *testing.T) {
		var have, want []gwv1.PolicyAncestorStatus
		for i := range 10 {
			have = append(have, entry(fmt.Sprint("o", i), "other"))
			want = append(want, entry(fmt.Sprint("g", i), "me"))
		}
		out, _ := mergeAncestors(have, want, "me", now)
		if len(out) != MaxAncestors || out[0].ControllerName != "other" || out[MaxAncestors-1].AncestorRef.Name != "g5" {
			t.Fatalf("got %d entries (first %s, last %s); want 16: the 10 others' and our first 6", len(out), out[0].ControllerName, out[len(out)-1].AncestorRef.Name)
		}
	})
}
