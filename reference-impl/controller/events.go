package controller

// Events: every watch event marks what changed and asks for the single reconcile.

import (
	"context"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// Every event maps to the single reconcile key, so bursts of events collapse into one
// reconcile. What the events were about decides how much that reconcile does: when only routes
// changed (a route created, edited or deleted: the propagation path) it translates just those
// routes on top of the previous result (incremental.Translator.Routes); anything else (Gateways,
// classes, Services, EndpointSlices, Secrets, Namespaces, ReferenceGrants, proxy Pods and
// Deployments, acks) makes it translate everything.
var all = reconcile.Request{NamespacedName: types.NamespacedName{Name: "all"}}

// maxRouteChanges bounds the routes one incremental reconcile takes; beyond it (a bulk
// create) one full translation is cheaper than inserting route by route.
const maxRouteChanges = 32

// dirtySet is what changed since the last reconcile.
type dirtySet struct {
	mu sync.Mutex
	// full: something other than routes changed (or an incremental reconcile failed).
	full   bool
	routes map[routeKey]bool
}

type routeKey struct {
	kind string
	key  types.NamespacedName
}

func (d *dirtySet) route(kind string, o client.Object) {
	d.mu.Lock()
	if d.routes == nil {
		d.routes = map[routeKey]bool{}
	}
	d.routes[routeKey{kind, types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}] = true
	d.mu.Unlock()
}

func (d *dirtySet) everything() {
	d.mu.Lock()
	d.full = true
	d.mu.Unlock()
}

// take returns and clears what changed; full is true when the reconcile must translate
// everything.
func (d *dirtySet) take() (routes []routeKey, full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Nothing recorded (a direct call, or a retry): translate everything, as a reconcile
	// always did.
	full = d.full || len(d.routes) > maxRouteChanges || len(d.routes) == 0
	if !full {
		for k := range d.routes {
			routes = append(routes, k)
		}
	}
	d.full = false
	clear(d.routes)
	return routes, full
}

// onRoute records route events of one kind.
func (r *Reconciler) onRoute(kind string) handler.EventHandler {
	return r.on(func(o client.Object) { r.dirty.route(kind, o) })
}

// onEnv records events that need a full translation.
func (r *Reconciler) onEnv() handler.EventHandler {
	return r.on(func(client.Object) { r.dirty.everything() })
}

func (r *Reconciler) on(mark func(client.Object)) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) { mark(e.Object); q.Add(all) },
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) { mark(e.ObjectNew); q.Add(all) },
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) { mark(e.Object); q.Add(all) },
		GenericFunc: func(_ context.Context, e event.GenericEvent, q queue) {
			mark(e.Object)
			q.Add(all)
		},
	}
}

// SetupWithManager registers the watches.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	spec := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
	b := ctrl.NewControllerManagedBy(mgr).Named("gatecheck-reference").
		Watches(&gwv1.GatewayClass{}, r.onEnv(), spec).
		Watches(&gwv1.Gateway{}, r.onEnv(), spec).
		Watches(&gwv1.HTTPRoute{}, r.onRoute("HTTPRoute"), spec).
		Watches(&gwv1.GRPCRoute{}, r.onRoute("GRPCRoute"), spec).
		Watches(&gwv1.TCPRoute{}, r.onRoute("TCPRoute"), spec).
		Watches(&gwv1.UDPRoute{}, r.onRoute("UDPRoute"), spec).
		Watches(&gwv1.TLSRoute{}, r.onRoute("TLSRoute"), spec).
		Watches(&gwv1b1.ReferenceGrant{}, r.onEnv(), spec).
		Watches(&gwv1.BackendTLSPolicy{}, r.onEnv(), spec).
		Watches(&corev1.Service{}, r.onEnv()).
		Watches(&discoveryv1.EndpointSlice{}, r.onEnv()).
		Watches(&networkingv1.Ingress{}, r.onEnv()).
		Watches(&networkingv1.IngressClass{}, r.onEnv()).
		Watches(&corev1.Namespace{}, r.onEnv()).
		Watches(&corev1.Pod{}, r.onEnv()).
		Watches(&appsv1.Deployment{}, r.onEnv()).
		WatchesRawSource(source.Channel(r.acks, r.onEnv()))
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("set up controller: %w", err)
	}
	return nil
}

// kick asks for a reconcile (after an ack, or to retry a failed write).
func (r *Reconciler) kick() {
	select {
	case r.acks <- event.GenericEvent{Object: &gwv1.GatewayClass{}}:
	default: // a reconcile is already pending; it will read the new state
	}
}
