// Command reference-controller is the gatecheck reference Gateway API controller.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/gatecheck/gatecheck/reference-impl/controller"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reference-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		opts        controller.Options
		svcType     string
		ctrlService string
		caSecret    string
		verbose     bool
	)
	flag.StringVar(&opts.ControllerName, "controller-name", controller.DefaultControllerName, "GatewayClass controllerName to serve")
	flag.StringVar(&opts.ProxyImage, "proxy-image", "gatecheck.dev/reference-proxy:dev", "image of the per-Gateway proxy")
	flag.StringVar(&svcType, "proxy-service-type", string(corev1.ServiceTypeLoadBalancer), "type of the per-Gateway proxy Service: ClusterIP, NodePort or LoadBalancer")
	flag.DurationVar(&opts.LoadBalancerWait, "lb-address-wait", 20*time.Second, "with LoadBalancer Services: how long to wait for a load balancer address before the Gateway advertises the Service's ClusterIP")
	flag.StringVar(&opts.DeliveryAddr, "delivery-addr", ":18000", "listen address of the config delivery server")
	flag.StringVar(&opts.DeliveryURL, "delivery-url", "", "URL proxies dial for config, with an IP address (default: the controller Service's ClusterIP, else $POD_IP)")
	flag.StringVar(&ctrlService, "controller-service", "gatecheck-system/gatecheck-reference-controller", "namespace/name of the Service in front of the delivery server")
	flag.StringVar(&caSecret, "delivery-ca-secret", "", "namespace/name of the Secret holding the delivery CA, created when missing (default: "+controller.DefaultCASecretName+" in the controller Service's namespace)")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "use leader election")
	flag.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the controller Service's namespace)")
	flag.StringVar(&opts.HealthAddr, "health-addr", ":8081", "address of /healthz and /readyz (0 disables)")
	flag.StringVar(&opts.MetricsAddr, "metrics-addr", "0", "address of controller-runtime metrics (0 disables)")
	flag.StringVar(&opts.PprofAddr, "pprof-addr", "0", "address of /debug/pprof for profiling (0 disables)")
	flag.BoolVar(&verbose, "v", false, "debug logging")
	flag.Parse()

	switch corev1.ServiceType(svcType) {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		opts.ServiceType = corev1.ServiceType(svcType)
	default:
		return fmt.Errorf("flag --proxy-service-type: %q is not ClusterIP, NodePort or LoadBalancer", svcType)
	}
	if ctrlService != "" {
		ns, name, ok := strings.Cut(ctrlService, "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("flag --controller-service: %q is not namespace/name", ctrlService)
		}
		opts.ControllerService = types.NamespacedName{Namespace: ns, Name: name}
	}
	if caSecret != "" {
		ns, name, ok := strings.Cut(caSecret, "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("flag --delivery-ca-secret: %q is not namespace/name", caSecret)
		}
		opts.CASecret = types.NamespacedName{Namespace: ns, Name: name}
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return controller.Run(ctx, cfg, opts)
}
