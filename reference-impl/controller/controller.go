package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/status"
	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// DefaultControllerName is the GatewayClass controllerName this implementation serves.
const DefaultControllerName = "gatecheck.dev/reference"

// Options configure the controller. Zero values take the documented defaults.
type Options struct {
	// ControllerName; default DefaultControllerName.
	ControllerName string
	// ProxyImage for the per-Gateway proxy Deployments; required.
	ProxyImage string
	// ServiceType of the per-Gateway proxy Service; default LoadBalancer, as most
	// implementations provision (the clusters gatecheck creates run MetalLB).
	ServiceType corev1.ServiceType
	// LoadBalancerWait is how long a LoadBalancer Service may go without an ingress address
	// before the Gateway advertises its ClusterIP instead (a cluster without a load balancer
	// implementation); default 20s.
	LoadBalancerWait time.Duration
	// ProxyReplicas per Gateway; default 1.
	ProxyReplicas int32
	// DeliveryAddr is where the delivery server listens; default ":18000".
	DeliveryAddr string
	// DeliveryURL is what proxies dial. It must be an IP address (the host cluster has no DNS).
	// Empty: the ClusterIP of ControllerService, else the POD_IP environment variable.
	DeliveryURL string
	// ControllerService is the Service in front of the controller's delivery port.
	ControllerService types.NamespacedName
	// CASecret holds the delivery CA (see pki.go); Run creates it when missing. Default:
	// DefaultCASecretName in the controller Service's namespace.
	CASecret types.NamespacedName
	// DeliveryServerName is the DNS name in the delivery server's certificate, which proxies
	// verify; default the controller Service's cluster DNS name, else
	// "gatecheck-reference-delivery".
	DeliveryServerName string
	// CA signs the delivery certificates. Run loads it from CASecret; nil (NewReconciler in
	// tests) means a CA generated in memory.
	CA *CA
	// LeaderElection and its namespace (default: the controller Service's namespace).
	LeaderElection          bool
	LeaderElectionNamespace string
	// HealthAddr serves /healthz and /readyz; default ":8081"; "0" disables.
	HealthAddr string
	// MetricsAddr serves controller-runtime metrics; default "0" (off).
	MetricsAddr string
	// PprofAddr serves /debug/pprof; default "0" (off).
	PprofAddr string
	Logger    *slog.Logger
}

func (o *Options) defaults() {
	if o.ControllerName == "" {
		o.ControllerName = DefaultControllerName
	}
	if o.ServiceType == "" {
		o.ServiceType = corev1.ServiceTypeLoadBalancer
	}
	if o.LoadBalancerWait == 0 {
		o.LoadBalancerWait = 20 * time.Second
	}
	if o.ProxyReplicas == 0 {
		o.ProxyReplicas = 1
	}
	if o.DeliveryAddr == "" {
		o.DeliveryAddr = ":" + strconv.Itoa(ir.DefaultDeliveryPort)
	}
	if o.HealthAddr == "" {
		o.HealthAddr = ":8081"
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "0"
	}
	if o.PprofAddr == "" {
		o.PprofAddr = "0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LeaderElectionNamespace == "" {
		o.LeaderElectionNamespace = o.ControllerService.Namespace
	}
	if o.CASecret.Name == "" {
		o.CASecret = types.NamespacedName{Namespace: o.ControllerService.Namespace, Name: DefaultCASecretName}
	}
	if o.DeliveryServerName == "" {
		o.DeliveryServerName = "gatecheck-reference-delivery"
		if s := o.ControllerService; s.Name != "" {
			o.DeliveryServerName = s.Name + "." + s.Namespace + ".svc"
		}
	}
}

// Scheme has every type the controller reads or writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1b1.Install} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// Run starts the manager and the delivery server and blocks until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	opts.defaults()
	if opts.ProxyImage == "" {
		return errors.New("options: ProxyImage is required")
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	if opts.CASecret.Namespace == "" {
		return errors.New("options: the delivery CA Secret needs a namespace (CASecret or ControllerService)")
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if opts.CA, err = LoadOrCreateCA(ctx, direct, opts.CASecret); err != nil {
		return err
	}
	serverTLS, err := opts.CA.ServerTLS(opts.DeliveryServerName)
	if err != nil {
		return err
	}
	ours := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  logr.FromSlogHandler(opts.Logger.Handler()),
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "gatecheck-reference-controller",
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Release the lease on shutdown so a replacement takes over at once.
		LeaderElectionReleaseOnCancel: true,
		HealthProbeBindAddress:        opts.HealthAddr,
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		PprofBindAddress:              opts.PprofAddr,
		// Secrets are never cached (listed or watched): the controller reads only those
		// listeners reference, with direct GETs (see referencedSecrets).
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:        {Label: ours},
			&appsv1.Deployment{}: {Label: ours},
		}},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if opts.HealthAddr != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return fmt.Errorf("add healthz: %w", err)
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return fmt.Errorf("add readyz: %w", err)
		}
	}
	r := NewReconciler(mgr.GetClient(), mgr.GetAPIReader(), opts)
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.Add(leaderOnly(func(ctx context.Context) error { r.writes.run(ctx, writeWorkers); return nil })); err != nil {
		return fmt.Errorf("add status writers: %w", err)
	}
	if err := mgr.Add(leaderOnly(func(ctx context.Context) error {
		r.secrets.run(ctx, r.kick, func(err error) { r.log.Error("reading referenced Secrets", "error", err) })
		return nil
	})); err != nil {
		return fmt.Errorf("add Secret poller: %w", err)
	}
	// The delivery server runs on every replica, but only the leader publishes snapshots;
	// the controller Service should only route to the leader, which with one replica it does.
	if err := mgr.Add(manager(func(ctx context.Context) error { return r.delivery.Serve(ctx, opts.DeliveryAddr, serverTLS) })); err != nil {
		return fmt.Errorf("add delivery server: %w", err)
	}
	opts.Logger.Info("starting reference controller", "controllerName", opts.ControllerName, "proxyImage", opts.ProxyImage, "serviceType", opts.ServiceType, "delivery", opts.DeliveryAddr)
	return mgr.Start(ctx)
}

// manager adapts a function to manager.Runnable that runs on every replica.
type manager func(context.Context) error

func (f manager) Start(ctx context.Context) error { return f(ctx) }
func (f manager) NeedLeaderElection() bool        { return false }

// leaderOnly adapts a function to a manager.Runnable that runs only on the leader.
type leaderOnly func(context.Context) error

func (f leaderOnly) Start(ctx context.Context) error { return f(ctx) }
func (f leaderOnly) NeedLeaderElection() bool        { return true }

// gatewayWriteGap spaces a Gateway's provisioning and status writes (see writeQueue.addSpaced):
// while routes change every few milliseconds, its status is written a few times a second.
const gatewayWriteGap = 200 * time.Millisecond

// Reconciler turns the whole cluster state into IR and statuses in one pass.
type Reconciler struct {
	c    client.Client
	api  client.Reader
	opts Options
	log  *slog.Logger
	prov *provisioner
	// secrets are the Secrets listeners reference, read directly (never cached).
	secrets *referencedSecrets
	stat    *status.Writer
	acks    chan event.GenericEvent
	// writes holds the API writes decided by reconciles (see writeQueue).
	writes *writeQueue
	// memo keeps route translations between reconciles (see translate.Memo).
	memo *translate.Memo
	// seen skips status comparisons of unchanged routes (see statusSeen); Reconcile only.
	seen statusSeen
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
		stat:    &status.Writer{Client: c, Reader: c, APIReader: api},
		secrets: &referencedSecrets{api: api},
		acks:    make(chan event.GenericEvent, 1),
		known:   map[types.NamespacedName]bool{},
		memo:    translate.NewMemo(),
	}
	r.dirty.full = true
	r.delivery = NewDelivery(opts.Logger, func(types.NamespacedName) { r.kick() })
	r.writes = newWriteQueue(opts.Logger, func() { time.AfterFunc(time.Second, r.kick) })
	return r
}

// kick asks for a reconcile (after an ack, or to retry a failed write).
func (r *Reconciler) kick() {
	select {
	case r.acks <- event.GenericEvent{Object: &gwv1.GatewayClass{}}:
	default: // a reconcile is already pending; it will read the new state
	}
}

// Delivery exposes the delivery server (for tests and the benchmark).
func (r *Reconciler) Delivery() *Delivery { return r.delivery }

// Every event maps to the single reconcile key, so bursts of events collapse into one
// reconcile. What the events were about decides how much that reconcile does: when only routes
// changed (a route created, edited or deleted: the propagation path) it translates just those
// routes on top of the previous result (translate.Memo.Routes); anything else (Gateways,
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
		Watches(&gwv1b1.ReferenceGrant{}, r.onEnv(), spec).
		Watches(&corev1.Service{}, r.onEnv()).
		Watches(&discoveryv1.EndpointSlice{}, r.onEnv()).
		Watches(&corev1.Namespace{}, r.onEnv()).
		Watches(&corev1.Pod{}, r.onEnv()).
		Watches(&appsv1.Deployment{}, r.onEnv()).
		WatchesRawSource(source.Channel(r.acks, r.onEnv()))
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("set up controller: %w", err)
	}
	return nil
}

// deliveryURL resolves the address proxies dial, as an IP (there is no cluster DNS).
func (r *Reconciler) deliveryURL(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.url != "" {
		return r.url, nil
	}
	if r.opts.DeliveryURL != "" {
		r.url = r.opts.DeliveryURL
		return r.url, nil
	}
	_, port, err := net.SplitHostPort(r.opts.DeliveryAddr)
	if err != nil {
		return "", fmt.Errorf("delivery address %q: %w", r.opts.DeliveryAddr, err)
	}
	if r.opts.ControllerService.Name != "" {
		svc := &corev1.Service{}
		if err := r.c.Get(ctx, r.opts.ControllerService, svc); err != nil {
			return "", fmt.Errorf("look up controller Service %s for the delivery address: %w", r.opts.ControllerService, err)
		}
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.IntValue() == mustAtoi(port) || p.Name == "delivery" {
					port = strconv.Itoa(int(p.Port))
				}
			}
			r.url = "https://" + net.JoinHostPort(ip, port)
			return r.url, nil
		}
	}
	if ip := os.Getenv("POD_IP"); ip != "" {
		r.url = "https://" + net.JoinHostPort(ip, port)
		return r.url, nil
	}
	return "", errors.New("no delivery address: set DeliveryURL, a ControllerService with a ClusterIP, or POD_IP")
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// Snapshot lists everything translation reads from the cache.
func (r *Reconciler) snapshot(ctx context.Context) (*translate.Input, error) {
	return r.list(ctx, true)
}

// list lists translation's input from the cache; without routes when withRoutes is false.
func (r *Reconciler) list(ctx context.Context, withRoutes bool) (*translate.Input, error) {
	in := &translate.Input{ControllerName: r.opts.ControllerName}
	var (
		gcs  gwv1.GatewayClassList
		gws  gwv1.GatewayList
		hrs  gwv1.HTTPRouteList
		grs  gwv1.GRPCRouteList
		trs  gwv1.TCPRouteList
		rgs  gwv1b1.ReferenceGrantList
		svcs corev1.ServiceList
		eps  discoveryv1.EndpointSliceList
		nss  corev1.NamespaceList
	)
	// Cached lists are shallow copies of the cache's objects (UnsafeDisableDeepCopy): translate
	// never modifies its input, and copying 5,000 routes per reconcile would dominate.
	noCopy := client.UnsafeDisableDeepCopy
	lists := []client.ObjectList{&gcs, &gws, &rgs, &svcs, &eps, &nss}
	if withRoutes {
		lists = append(lists, &hrs, &grs, &trs)
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
	in.ReferenceGrants = ptrs(rgs.Items)
	in.Services = ptrs(svcs.Items)
	in.EndpointSlices = ptrs(eps.Items)
	in.Namespaces = ptrs(nss.Items)
	secrets, err := r.secrets.get(ctx, translate.SecretRefs(in))
	if err != nil {
		return nil, err
	}
	in.Secrets = secrets
	return in, nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// Reconcile translates everything and applies the result.
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
		if in, err = r.snapshot(ctx); err != nil {
			return reconcile.Result{}, err
		}
		out = r.memo.Translate(in)
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
	for key, res := range out.Gateways {
		gw := gwByKey[key]
		if res.Valid && url != "" {
			if _, err := r.delivery.PublishEncoded(res.Snapshot, res.Encoded); err != nil {
				errs = append(errs, err)
				res.Valid, res.Invalid = false, err.Error()
			}
		}
		if !res.Valid {
			r.delivery.Forget(key)
		}
		r.writes.addSpaced("Gateway/"+key.String(), gatewayWriteGap, func(ctx context.Context) error { return r.gateway(ctx, gw, res, url) })
	}
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
		r.seen.begin()
	}
	routeStatuses(r.writes, &r.seen, terminating, "HTTPRoute", routes.HTTPRoutes, out.HTTPRoutes, r.opts.ControllerName, func(o *gwv1.HTTPRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.HTTPRoute)
	routeStatuses(r.writes, &r.seen, terminating, "GRPCRoute", routes.GRPCRoutes, out.GRPCRoutes, r.opts.ControllerName, func(o *gwv1.GRPCRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.GRPCRoute)
	routeStatuses(r.writes, &r.seen, terminating, "TCPRoute", routes.TCPRoutes, out.TCPRoutes, r.opts.ControllerName, func(o *gwv1.TCPRoute) []gwv1.RouteParentStatus { return o.Status.Parents }, r.stat.TCPRoute)
	if !incremental {
		r.seen.end()
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
	r.log.Debug("reconciled", "incremental", incremental, "gateways", len(out.Gateways), "routes", len(routes.HTTPRoutes)+len(routes.GRPCRoutes)+len(routes.TCPRoutes), "memoHits", r.memo.Hits, "memoMisses", r.memo.Misses, "start", start.Format("15:04:05.000000"), "translate", translated, "published", time.Since(start))
	if len(errs) > 0 {
		return reconcile.Result{}, errors.Join(errs...)
	}
	return reconcile.Result{}, nil
}

// translateRoutes is the incremental reconcile: only routes changed since the last one, so
// only they are read and translated (translate.Memo.Routes). out is nil when that is not
// possible and everything must be translated. routes holds the changed routes that exist.
func (r *Reconciler) translateRoutes(ctx context.Context, changed []routeKey) (in *translate.Input, out *translate.Output, routes *translate.Input, err error) {
	if in, err = r.list(ctx, false); err != nil {
		return nil, nil, nil, err
	}
	routes = &translate.Input{}
	changes := make([]translate.RouteChange, 0, len(changed))
	for _, k := range changed {
		var obj client.Object
		switch k.kind {
		case "HTTPRoute":
			obj = &gwv1.HTTPRoute{}
		case "GRPCRoute":
			obj = &gwv1.GRPCRoute{}
		case "TCPRoute":
			obj = &gwv1.TCPRoute{}
		default:
			return nil, nil, nil, fmt.Errorf("changed route %s of unknown kind %q", k.key, k.kind)
		}
		switch err := r.c.Get(ctx, k.key, obj); {
		case apierrors.IsNotFound(err):
			changes = append(changes, translate.RouteChange{Kind: k.kind, Key: k.key})
			continue
		case err != nil:
			return nil, nil, nil, fmt.Errorf("get %s %s: %w", k.kind, k.key, err)
		}
		changes = append(changes, translate.RouteChange{Kind: k.kind, Key: k.key, Object: obj})
		routes.AddRoute(obj)
	}
	out, ok := r.memo.Routes(in, changes)
	if !ok {
		return nil, nil, nil, nil
	}
	return in, out, routes, nil
}

// routeStatuses writes our parents of every route of one kind, including clearing entries of
// routes that no longer reference a Gateway of ours. seen skips the comparison for routes
// already found up to date (see statusSeen).
func routeStatuses[T client.Object](q *writeQueue, seen *statusSeen, terminating map[string]bool, kind string, routes []T, want map[types.NamespacedName][]gwv1.RouteParentStatus, controller string, parents func(T) []gwv1.RouteParentStatus, write func(context.Context, types.NamespacedName, string, []gwv1.RouteParentStatus) (bool, error)) {
	for _, rt := range routes {
		if rt.GetDeletionTimestamp() != nil || terminating[rt.GetNamespace()] {
			// Going away: when a namespace is deleted its Gateways often go first, and
			// clearing the status of each of its routes (a write per route, thousands in a
			// benchmark namespace) only slows the deletion down.
			continue
		}
		key := types.NamespacedName{Namespace: rt.GetNamespace(), Name: rt.GetName()}
		w, ok := want[key]
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
		if ok && seen.upToDate(kind, key, rt.GetResourceVersion(), w) {
			continue
		}
		if ok && parentsEqual(parents(rt), w, controller) {
			seen.record(kind, key, rt.GetResourceVersion(), w)
			continue
		}
		q.add(kind+"/"+key.String(), func(ctx context.Context) error {
			_, err := write(ctx, key, controller, w)
			return err
		})
	}
}

// statusSeen remembers, per route, the resourceVersion and the desired parents (by identity:
// translate.Memo hands out the same slice while a route's result is unchanged) for which the
// cached route already carried our status. A reconcile then compares only the routes that
// changed instead of all of them (with 1,000 routes the comparisons took ~1 ms of every
// reconcile on the propagation path).
type statusSeen struct {
	pass    uint64
	entries map[statusSeenKey]statusSeenEntry
}

type statusSeenKey struct {
	kind string
	key  types.NamespacedName
}

type statusSeenEntry struct {
	rv   string
	want *gwv1.RouteParentStatus // &want[0]
	n    int
	pass uint64
}

func (s *statusSeen) upToDate(kind string, key types.NamespacedName, rv string, want []gwv1.RouteParentStatus) bool {
	if rv == "" || len(want) == 0 {
		return false
	}
	k := statusSeenKey{kind, key}
	e, ok := s.entries[k]
	if !ok || e.rv != rv || e.want != &want[0] || e.n != len(want) {
		return false
	}
	e.pass = s.pass
	s.entries[k] = e
	return true
}

func (s *statusSeen) record(kind string, key types.NamespacedName, rv string, want []gwv1.RouteParentStatus) {
	if rv == "" || len(want) == 0 {
		return
	}
	if s.entries == nil {
		s.entries = map[statusSeenKey]statusSeenEntry{}
	}
	s.entries[statusSeenKey{kind, key}] = statusSeenEntry{rv: rv, want: &want[0], n: len(want), pass: s.pass}
}

// begin starts a reconcile's pass; end drops the routes the pass did not see.
func (s *statusSeen) begin() { s.pass++ }

func (s *statusSeen) end() {
	for k, e := range s.entries {
		if e.pass != s.pass {
			delete(s.entries, k)
		}
	}
}

// parentsEqual is a cheap pre-check against the cached object: same conditions (ignoring
// transition times) for our parents means no write is needed.
func parentsEqual(have, want []gwv1.RouteParentStatus, controller string) bool {
	var mine []gwv1.RouteParentStatus
	for _, p := range have {
		if string(p.ControllerName) == controller {
			mine = append(mine, p)
		}
	}
	if len(mine) != len(want) {
		return false
	}
	for i := range want {
		a, b := mine[i], want[i]
		if len(a.Conditions) != len(b.Conditions) || !refEqual(a.ParentRef, b.ParentRef) {
			return false
		}
		for j := range a.Conditions {
			x, y := a.Conditions[j], b.Conditions[j]
			if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
				return false
			}
		}
	}
	return true
}

func refEqual(a, b gwv1.ParentReference) bool {
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return s((*string)(a.Group)) == s((*string)(b.Group)) && s((*string)(a.Kind)) == s((*string)(b.Kind)) &&
		s((*string)(a.Namespace)) == s((*string)(b.Namespace)) && a.Name == b.Name &&
		s((*string)(a.SectionName)) == s((*string)(b.SectionName)) &&
		((a.Port == nil && b.Port == nil) || (a.Port != nil && b.Port != nil && *a.Port == *b.Port))
}

// clashRecheck is how long a Gateway whose proxy names clash waits before the next attempt.
const clashRecheck = 10 * time.Second

// gateway provisions the proxies of one Gateway and writes its status once its proxies have
// acknowledged the published snapshot (or a short wait ran out).
func (r *Reconciler) gateway(ctx context.Context, gw *gwv1.Gateway, res *translate.GatewayResult, url string) error {
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	dp := translate.DataPlane{}
	var errs []error
	var clash *nameClashError
	if res.Valid && url != "" {
		err := r.prov.Ensure(ctx, gw, res.Ports, url)
		if errors.As(err, &clash) {
			// Data, not a failure to retry at once: the Gateway says so, and the controller
			// looks again in a while (the other object's deletion may not be watched).
			r.log.Warn("proxy name conflict", "gateway", key.String(), "error", err)
			time.AfterFunc(clashRecheck, r.kick)
			dp.Reason, dp.Message = NameConflict, clash.Error()
			translate.ApplyDataPlane(res, dp)
			_, err := r.stat.Gateway(ctx, key, res.Status)
			return err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("provision proxies of gateway %s: %w", key, err))
		}
		svc := &corev1.Service{}
		if err := r.c.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: proxyName(gw)}, svc); err == nil {
			var retry time.Duration
			dp.Addresses, retry = addresses(svc, time.Now(), r.opts.LoadBalancerWait)
			if retry > 0 {
				// Nothing else may change once the wait runs out: ask again then.
				time.AfterFunc(retry+100*time.Millisecond, r.kick)
			}
		}
		ready, err := r.readyProxies(ctx, gw)
		if err != nil {
			errs = append(errs, err)
		}
		dp.Ready, dp.Message = r.delivery.WaitAcked(ctx, key, ready, time.Second)
		if !dp.Ready {
			// Re-check after arming, so an ack landing in between is not lost.
			r.delivery.NotifyOnAck(key)
			dp.Ready, dp.Message = r.delivery.AckState(key, ready)
		}
	} else if !res.Valid {
		if err := r.prov.Remove(ctx, gw); err != nil {
			errs = append(errs, err)
		}
	}
	translate.ApplyDataPlane(res, dp)
	if _, err := r.stat.Gateway(ctx, key, res.Status); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readyProxies lists the names of the Gateway's proxy pods that are Ready and not terminating.
func (r *Reconciler) readyProxies(ctx context.Context, gw *gwv1.Gateway) ([]string, error) {
	var pods corev1.PodList
	if err := r.c.List(ctx, &pods, client.InNamespace(gw.Namespace), client.MatchingLabels{LabelProxyFor: gatewayHash(gw)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list proxy pods of gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out = append(out, p.Name)
			}
		}
	}
	return out, nil
}
