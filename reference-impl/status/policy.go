package status

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// MaxAncestors is the most entries status.ancestors of a policy may hold (the CRD's limit).
const MaxAncestors = 16

// mergeAncestors replaces the ancestor statuses written by controller with want, keeping other
// controllers' entries (the list is a map keyed by ancestorRef and controllerName), and reports
// whether anything changed. Entries beyond MaxAncestors are not added, as the API says.
func mergeAncestors(have, want []gwv1.PolicyAncestorStatus, controller string, now metav1.Time) ([]gwv1.PolicyAncestorStatus, bool) {
	var out, mine []gwv1.PolicyAncestorStatus
	for _, a := range have {
		if string(a.ControllerName) == controller {
			mine = append(mine, a)
		} else {
			out = append(out, a)
		}
	}
	var next []gwv1.PolicyAncestorStatus
	for _, a := range want {
		if len(out)+len(next) == MaxAncestors {
			break
		}
		a := *a.DeepCopy()
		var prev []metav1.Condition
		for _, h := range mine {
			if equality.Semantic.DeepEqual(h.AncestorRef, a.AncestorRef) {
				prev = h.Conditions
			}
		}
		a.Conditions = MergeConditions(prev, a.Conditions, now)
		next = append(next, a)
	}
	if equality.Semantic.DeepEqual(mine, next) || (len(mine) == 0 && len(next) == 0) {
		return have, false
	}
	out = append(out, next...)
	if out == nil {
		out = []gwv1.PolicyAncestorStatus{} // status.ancestors is required: [] rather than null
	}
	return out, true
}

// BackendTLSPolicy writes the ancestors of a BackendTLSPolicy that controller owns.
func (w *Writer) BackendTLSPolicy(ctx context.Context, key types.NamespacedName, controller string, want []gwv1.PolicyAncestorStatus) (bool, error) {
	now := w.now()
	return update(ctx, w, key, &gwv1.BackendTLSPolicy{}, func(o *gwv1.BackendTLSPolicy) bool {
		var changed bool
		o.Status.Ancestors, changed = mergeAncestors(o.Status.Ancestors, want, controller, now)
		return changed
	})
}
