package controller

// BackendTLSPolicy statuses: the ancestors translation computed (translate/backendtls.go).

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// backendTLSPolicyStatuses queues a write of our ancestor entries for every BackendTLSPolicy
// that has some, or had some and has none now. A write that changes nothing is skipped by
// the status writer (a cached read, no API call).
func (r *Reconciler) backendTLSPolicyStatuses(in *translate.Input, out *translate.Output) {
	for _, p := range in.BackendTLSPolicies {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
		want, ok := out.BackendTLSPolicies[key]
		if !ok {
			mine := false
			for _, a := range p.Status.Ancestors {
				if string(a.ControllerName) == r.opts.ControllerName {
					mine = true
				}
			}
			if !mine || p.DeletionTimestamp != nil {
				continue
			}
		}
		r.writes.add("BackendTLSPolicy/"+key.String(), func(ctx context.Context) error {
			_, err := r.stat.BackendTLSPolicy(ctx, key, r.opts.ControllerName, want)
			return err
		})
	}
}
