package sidecar

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

var (
	flagKubeconfig     = flag.String("sidecar.kubeconfig", "", "kubeconfig of the cluster under test (default: $"+suiteenv.EnvKubeconfig+")")
	flagImage          = flag.String("sidecar.image", "", "echo-backend image (lifecycle and forward-proxy modes) on the node (default: $"+suiteenv.EnvEchoImage+", else "+suiteenv.DefaultEchoImage+")")
	flagPullPolicy     = flag.String("sidecar.pull-policy", "IfNotPresent", "imagePullPolicy of the suite's containers (there is no registry: Never or IfNotPresent)")
	flagMeshPods       = flag.Int("sidecar.mesh-pods", 10, "pods per variant in the mesh proxy readiness measurement")
	flagMeshConcurrent = flag.Int("sidecar.mesh-concurrent", 6, "mesh proxy readiness: at most this many app Pods starting at a time")
	flagKeep           = flag.Bool("sidecar.keep", false, "keep the test namespace after the suite, for debugging")
)

// env is what every spec shares: the clients and the namespace the suite created.
var env struct {
	cfg       *rest.Config
	cs        kubernetes.Interface
	namespace string
	node      string
	version   string
}

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	// The runner's contract (suites/suiteenv) gives the defaults; flags override them.
	senv, err := suiteenv.Load()
	Expect(err).NotTo(HaveOccurred())
	// A KUBECONFIG left in a shell must not turn `go test ./...` into a cluster run (same rule as
	// the traffic suites): run with -sidecar.kubeconfig, or with the runner's environment.
	path := *flagKubeconfig
	if path == "" && senv.Kubeconfig != "" && os.Getenv(suiteenv.EnvGatewayClass) != "" {
		path = senv.Kubeconfig
	}
	if path == "" {
		Skip(fmt.Sprintf("no cluster configured: pass -sidecar.kubeconfig=PATH (gatecheck __suite sidecar -sidecar.kubeconfig=$%s), or set %s and %s as `gatecheck run` does",
			suiteenv.EnvKubeconfig, suiteenv.EnvKubeconfig, suiteenv.EnvGatewayClass))
	}
	if *flagImage == "" {
		*flagImage = senv.EchoImage
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	Expect(err).NotTo(HaveOccurred(), "load kubeconfig %s", path)
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	env.cfg, env.cs = cfg, cs

	sv, err := cs.Discovery().ServerVersion()
	Expect(err).NotTo(HaveOccurred(), "get server version from %s", cfg.Host)
	env.version = sv.GitVersion
	fmt.Fprintf(GinkgoWriter, "cluster %s, Kubernetes %s\n", cfg.Host, env.version)

	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(nodes.Items).NotTo(BeEmpty(), "cluster %s has no nodes", cfg.Host)
	// Images cannot be pulled (no registry): check the node has them, so a missing image fails
	// here with a clear message instead of as a Pod stuck in ErrImageNeverPull.
	n := nodes.Items[0]
	env.node = n.Name
	for _, img := range []string{*flagImage} {
		if senv.ImagesPulled {
			break // every node pulled it from the registry before the suite (--registry)
		}
		Expect(nodeHasImage(n, img)).To(BeTrue(), "node %s does not have image %s; load it first (gatecheck cluster up loads gatecheck's images)", n.Name, img)
	}

	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "gatecheck-sidecar-",
		Labels:       map[string]string{"app.kubernetes.io/part-of": "gatecheck"},
	}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	env.namespace = ns.Name
	DeferCleanup(func(ctx context.Context) error {
		if *flagKeep {
			fmt.Fprintf(GinkgoWriter, "keeping namespace %s (-sidecar.keep)\n", env.namespace)
			return nil
		}
		err := cs.CoreV1().Namespaces().Delete(ctx, env.namespace, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	Expect(waitFor(ctx, "default ServiceAccount in "+env.namespace, time.Minute, func(ctx context.Context) (bool, string, error) {
		_, err := cs.CoreV1().ServiceAccounts(env.namespace).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not created yet", nil
		}
		return err == nil, "", err
	})).To(Succeed())

	reason, err := nativeSidecarsUnsupported(ctx, cs, env.namespace, *flagImage, env.version)
	Expect(err).NotTo(HaveOccurred())
	if reason != "" {
		Skip(reason)
	}
}

func nodeHasImage(n corev1.Node, ref string) bool {
	for _, img := range n.Status.Images {
		if slices.Contains(img.Names, ref) || slices.Contains(img.Names, "docker.io/"+ref) {
			return true
		}
	}
	return false
}

// nativeSidecarsUnsupported asks the API server, with a dry-run create, whether it keeps an init
// container's restartPolicy; servers without the SidecarContainers feature drop the field (or,
// with strict validation, refuse it). It returns the skip reason, naming the server version.
func nativeSidecarsUnsupported(ctx context.Context, cs kubernetes.Interface, namespace, image, version string) (string, error) {
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "native-sidecar-probe", Namespace: namespace},
		Spec: corev1.PodSpec{
			RestartPolicy:  corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{{Name: "sidecar", Image: image, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
			Containers:     []corev1.Container{{Name: "main", Image: image}},
		},
	}
	got, err := cs.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "restartPolicy") {
			return fmt.Sprintf("Kubernetes %s does not support native sidecars: it refused an init container with restartPolicy Always: %v", version, err), nil
		}
		return "", fmt.Errorf("dry-run create of native sidecar probe Pod %s/%s: %w", namespace, probe.Name, err)
	}
	if len(got.Spec.InitContainers) == 0 || got.Spec.InitContainers[0].RestartPolicy == nil || *got.Spec.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		return fmt.Sprintf("Kubernetes %s does not support native sidecars: the API server dropped initContainers[0].restartPolicy (feature gate SidecarContainers off; native sidecars need 1.29+, GA in 1.33)", version), nil
	}
	return "", nil
}
