package controller

// Route statuses: which routes need a status write.

import (
	"context"

	"github.com/gatecheck/gatecheck/reference-impl/status"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// routeStatuses queues a write of our parents for every route of one kind whose status is not
// current (w.RouteCurrent), including clearing entries of routes that no longer reference a
// Gateway of ours.
func routeStatuses[T client.Object](q *writeQueue, w *status.Writer, terminating map[string]bool, kind string, routes []T, want map[types.NamespacedName][]gwv1.RouteParentStatus, controller string, parents func(T) []gwv1.RouteParentStatus, write func(context.Context, types.NamespacedName, string, []gwv1.RouteParentStatus) (bool, error)) {
	for _, rt := range routes {
		if rt.GetDeletionTimestamp() != nil || terminating[rt.GetNamespace()] {
			// Going away: when a namespace is deleted its Gateways often go first, and
			// clearing the status of each of its routes (a write per route, thousands in a
			// benchmark namespace) only slows the deletion down.
			continue
		}
		key := types.NamespacedName{Namespace: rt.GetNamespace(), Name: rt.GetName()}
		desired, ok := want[key]
		if !ok {
			mine := false
			for _, p := range parents(rt) {
				if string(p.ControllerName) == controller {
					mine = true
				}
			}
			if !mine {
				continue
			}
		}
		if ok && w.RouteCurrent(kind, key, rt.GetResourceVersion(), func() []gwv1.RouteParentStatus { return parents(rt) }, desired, controller) {
			continue
		}
		q.add(kind+"/"+key.String(), func(ctx context.Context) error {
			_, err := write(ctx, key, controller, desired)
			return err
		})
	}
}
