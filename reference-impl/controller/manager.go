package controller

// Manager wiring: options, the scheme, and Run.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
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
		// listeners reference, with direct GETs (see referenced.go).
		// ConfigMaps likewise.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}},
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
	if err := mgr.Add(leaderOnly(func(ctx context.Context) error {
		r.configMaps.run(ctx, r.kick, func(err error) { r.log.Error("reading referenced ConfigMaps", "error", err) })
		return nil
	})); err != nil {
		return fmt.Errorf("add ConfigMap poller: %w", err)
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
