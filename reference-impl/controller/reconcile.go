package controller

// Reconcile: list the input, translate it (incrementally when only routes changed), publish
// each Gateway's snapshot and queue the writes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatecheck/gatecheck/reference-impl/incremental"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/status"
	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// gatewayWriteGap spaces a Gateway's provisioning and status writes (see writeQueue.addSpaced):
// while routes change every few milliseconds, its status is written a few times a second.
const gatewayWriteGap = 200 * time.Millisecond

// Reconciler turns the cluster state into each Gateway's IR and every status, in one reconcile
// for all objects (see all).
type Reconciler struct {
	c    client.Client
	api  client.Reader
	opts Options
	log  *slog.Logger
	prov *provisioner
	// secrets are the Secrets listeners reference, read directly (never cached).
	secrets *referencedSecrets
	// configMaps are the ConfigMaps translation references, read directly (never cached).
	configMaps *referencedConfigMaps
	stat       *status.Writer
	acks       chan event.GenericEvent
	// writes holds the API writes decided by reconciles (see writeQueue).
	writes *writeQueue
	// translator keeps route translations between reconciles (see incremental.Translator).
	translator *incremental.Translator
	// dirty collects what events said changed, for the next reconcile.
	dirty dirtySet
	mu    sync.Mutex
	url   string
	known map[types.NamespacedName]bool

	delivery *Delivery
}

// NewReconciler wires a reconciler; c should be a cached client.
func NewReconciler(c client.Client, api client.Reader, opts Options) *Reconciler {
	opts.defaults()
	if opts.CA == nil {
		ca, err := NewCA()
		if err != nil {
			panic(err) // crypto/rand failed: nothing can work
		}
		opts.CA = ca
	}
	r := &Reconciler{
		c: c, api: api, opts: opts, log: opts.Logger,
		prov: &provisioner{c: c, api: api, image: opts.ProxyImage, serviceType: opts.ServiceType, replicas: opts.ProxyReplicas,
			ca: opts.CA, serverName: opts.DeliveryServerName},
		stat:       &status.Writer{Client: c, Reader: c, APIReader: api},
		secrets:    &referencedSecrets{api: api},
		configMaps: &referencedConfigMaps{api: api},
		acks:       make(chan event.GenericEvent, 1),
		known:      map[types.NamespacedName]bool{},
		translator: incremental.New(),
	}
	r.dirty.full = true
	r.delivery = NewDelivery(opts.Logger, func(types.NamespacedName) { r.kick() })
	r.writes = newWriteQueue(opts.Logger)
	return r
}

// Delivery exposes the delivery server (for tests and the benchmark).
func (r *Reconciler) Delivery() *Delivery { return r.delivery }

// list lists translation's input from the cache (and the referenced Secrets, see
// referencedSecrets, referenced.go); without routes when withRoutes is false.
func (r *Reconciler) list(ctx context.Context, withRoutes bool) (*translate.Input, error) {
	in := &translate.Input{ControllerName: r.opts.ControllerName}
	var (
		gcs  gwv1.GatewayClassList
		gws  gwv1.GatewayList
		hrs  gwv1.HTTPRouteList
		grs  gwv1.GRPCRouteList
		trs  gwv1.TCPRouteList
		urs  gwv1.UDPRouteList
		lrs  gwv1.TLSRouteList
		btps gwv1.BackendTLSPolicyList
		rgs  gwv1b1.ReferenceGrantList
		svcs corev1.ServiceList
		eps  discoveryv1.EndpointSliceList
		nss  corev1.NamespaceList
	)
	// Cached lists are shallow copies of the cache's objects (UnsafeDisableDeepCopy): translate
	// never modifies its input, and copying 5,000 routes per reconcile would dominate.
	noCopy := client.UnsafeDisableDeepCopy
	lists := []client.ObjectList{&gcs, &gws, &rgs, &svcs, &eps, &nss, &btps}
	if withRoutes {
		lists = append(lists, &hrs, &grs, &trs, &urs, &lrs)
	}
	for _, l := range lists {
		if err := r.c.List(ctx, l, noCopy); err != nil {
			return nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	in.GatewayClasses = ptrs(gcs.Items)
	in.Gateways = ptrs(gws.Items)
	in.HTTPRoutes = ptrs(hrs.Items)
	in.GRPCRoutes = ptrs(grs.Items)
	in.TCPRoutes = ptrs(trs.Items)
	in.UDPRoutes = ptrs(urs.Items)
	in.TLSRoutes = ptrs(lrs.Items)
	in.ReferenceGrants = ptrs(rgs.Items)
	in.Services = ptrs(svcs.Items)
	in.EndpointSlices = ptrs(eps.Items)
	in.Namespaces = ptrs(nss.Items)
	in.BackendTLSPolicies = ptrs(btps.Items)
	if err := r.listIngresses(ctx, in); err != nil { // ingress.go
		return nil, err
	}
	secrets, err := r.secrets.get(ctx, translate.SecretRefs(in))
	if err != nil {
		return nil, err
	}
	in.Secrets = secrets
	if in.ConfigMaps, err = r.configMaps.get(ctx, translate.ConfigMapRefs(in)); err != nil {
		return nil, err
	}
	return in, nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// Reconcile translates what changed since the last reconcile (only the changed routes when
// nothing else changed, else everything), publishes each Gateway's snapshot on this goroutine
// and queues the API writes (proxies, statuses) for the write workers.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (res reconcile.Result, err error) {
	start := time.Now()
	changed, full := r.dirty.take()
	defer func() {
		if err != nil {
			r.dirty.everything() // the retry translates everything
		}
	}()
	var (
		in  *translate.Input
		out *translate.Output
		// routes are the routes whose statuses to check: all of them, or the changed ones.
		routes *translate.Input
	)
	if !full {
		in, out, routes, err = r.translateRoutes(ctx, changed)
		if err != nil {
			return reconcile.Result{}, err
		}
	}
	incremental := out != nil
	if !incremental {
		if in, err = r.list(ctx, true); err != nil {
			return reconcile.Result{}, err
		}
		out = r.translator.Translate(in)
		routes = in
	}
	translated := time.Since(start)

	gwByKey := map[types.NamespacedName]*gwv1.Gateway{}
	for _, gw := range in.Gateways {
		gwByKey[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = gw
	}
	var errs []error
	url, err := r.deliveryURL(ctx)
	if err != nil {
		errs = append(errs, err)
	}

	// Publish on this goroutine: it is what makes the change live. Everything else (proxy
	// provisioning, statuses) goes to the write queue so the next change is not held up by
	// API round trips.
	// An incremental reconcile translated only the changed routes: only they can differ
	// from what was published (delta.DiffRoutes).
	var changedRoutes []ir.RouteKey
	if incremental {
		changedRoutes = make([]ir.RouteKey, 0, len(changed))
		for _, k := range changed {
			changedRoutes = append(changedRoutes, ir.RouteKey{Kind: ir.RouteKind(k.kind), Namespace: k.key.Namespace, Name: k.key.Name})
		}
	}
	for key, res := range out.Gateways {
		gw := gwByKey[key]
		if res.Valid && url != "" {
			if _, err := r.delivery.PublishRoutes(res.Snapshot, changedRoutes); err != nil {
				errs = append(errs, err)
				res.Valid, res.Invalid = false, err.Error()
			}
		}
		if !res.Valid {
			r.delivery.Forget(key)
		}
		r.writes.addSpaced("Gateway/"+key.String(), gatewayWriteGap, func(ctx context.Context) error { return r.gateway(ctx, gw, res, url) })
	}
	r.ingressStatuses(in) // ingress.go
	for name, st := range out.GatewayClasses {
		r.writes.add("GatewayClass/"+name, func(ctx context.Context) error {
			_, err := r.stat.GatewayClass(ctx, name, st)
			return err
		})
	}
	terminating := map[string]bool{}
	for _, ns := range in.Namespaces {
		if ns.DeletionTimestamp != nil {
			terminating[ns.Name] = true
		}
	}
	if !incremental {
		r.stat.BeginPass()
	}
	routeStatuses(r.writes, r.stat, terminating, "HTTPRoute", routes.HTTPRoutes, out.HTTPRoutes, r.opts.ControllerName, func(o *gwv1.HTTPRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.HTTPRoute)
	routeStatuses(r.writes, r.stat, terminating, "GRPCRoute", routes.GRPCRoutes, out.GRPCRoutes, r.opts.ControllerName, func(o *gwv1.GRPCRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.GRPCRoute)
	routeStatuses(r.writes, r.stat, terminating, "TCPRoute", routes.TCPRoutes, out.TCPRoutes, r.opts.ControllerName, func(o *gwv1.TCPRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.TCPRoute)
	routeStatuses(r.writes, r.stat, terminating, "UDPRoute", routes.UDPRoutes, out.UDPRoutes, r.opts.ControllerName, func(o *gwv1.UDPRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.UDPRoute)
	routeStatuses(r.writes, r.stat, terminating, "TLSRoute", routes.TLSRoutes, out.TLSRoutes, r.opts.ControllerName, func(o *gwv1.TLSRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.TLSRoute)
	if !incremental { // an incremental reconcile happens only without policies (incremental.Translator.Routes)
		r.backendTLSPolicyStatuses(in, out) // backendtls.go
	}
	if !incremental {
		r.stat.EndPass()
		// Forget Gateways that are gone (their proxies go with them through owner references).
		r.mu.Lock()
		for k := range r.known {
			if _, ok := out.Gateways[k]; !ok {
				r.delivery.Forget(k)
				delete(r.known, k)
			}
		}
		for k := range out.Gateways {
			r.known[k] = true
		}
		r.mu.Unlock()
	}
	r.log.Debug("reconciled", "incremental", incremental, "gateways", len(out.Gateways), "routes", len(routes.HTTPRoutes)+len(routes.GRPCRoutes)+len(routes.TCPRoutes), "routesKept", r.translator.Hits, "routesTranslated", r.translator.Misses, "start", start.Format("15:04:05.000000"), "translate", translated, "published", time.Since(start))
	if len(errs) > 0 {
		return reconcile.Result{}, errors.Join(errs...)
	}
	return reconcile.Result{}, nil
}

// translateRoutes is the incremental reconcile: only routes changed since the last one, so
// only they are read and translated (incremental.Translator.Routes). out is nil when that is not
// possible and everything must be translated. routes holds the changed routes that exist.
func (r *Reconciler) translateRoutes(ctx context.Context, changed []routeKey) (in *translate.Input, out *translate.Output, routes *translate.Input, err error) {
	if in, err = r.list(ctx, false); err != nil {
		return nil, nil, nil, err
	}
	routes = &translate.Input{}
	changes := make([]incremental.RouteChange, 0, len(changed))
	for _, k := range changed {
		var obj client.Object
		switch k.kind {
		case "HTTPRoute":
			obj = &gwv1.HTTPRoute{}
		case "GRPCRoute":
			obj = &gwv1.GRPCRoute{}
		case "TCPRoute":
			obj = &gwv1.TCPRoute{}
		case "UDPRoute":
			obj = &gwv1.UDPRoute{}
		case "TLSRoute":
			obj = &gwv1.TLSRoute{}
		default:
			return nil, nil, nil, fmt.Errorf("changed route %s of unknown kind %q", k.key, k.kind)
		}
		switch err := r.c.Get(ctx, k.key, obj); {
		case apierrors.IsNotFound(err):
			changes = append(changes, incremental.RouteChange{Kind: k.kind, Key: k.key})
			continue
		case err != nil:
			return nil, nil, nil, fmt.Errorf("get %s %s: %w", k.kind, k.key, err)
		}
		changes = append(changes, incremental.RouteChange{Kind: k.kind, Key: k.key, Object: obj})
		routes.AddRoute(obj)
	}
	out, ok := r.translator.Routes(in, changes)
	if !ok {
		return nil, nil, nil, nil
	}
	return in, out, routes, nil
}
