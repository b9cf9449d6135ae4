package gwtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best dot-imported.
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/gateway-api/pkg/features"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/internal/wait"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

// EnvKeepNamespace, when set to anything, keeps each suite's namespace for debugging.
const EnvKeepNamespace = "GATECHECK_KEEP_NAMESPACE"

// Timeouts, named so that a slow cluster is one edit away.
const (
	// GatewayTimeout covers the implementation starting a proxy for a new Gateway.
	GatewayTimeout    = 3 * time.Minute
	RouteTimeout      = 90 * time.Second
	DeploymentTimeout = 2 * time.Minute
	// ConvergeTimeout is how long a new or changed route may take to serve as declared
	// (upstream conformance's MaxTimeToConsistency is 30 s).
	ConvergeTimeout = 60 * time.Second
)

// GatewayAPIGroup is the API group of Gateways and routes.
const GatewayAPIGroup = "gateway.networking.k8s.io"

// Env is what every spec of a traffic suite shares: the configuration the runner passed,
// clients, the suite's own namespace and the features the GatewayClass claims.
type Env struct {
	Config    suiteenv.Config
	REST      *rest.Config
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Applier   *install.Applier
	Namespace string
	Log       *slog.Logger

	// dialer opens port-forwards (reach mode port-forward), made on first use.
	dialer *podDialer
	// gateways are the Gateways WaitGateway resolved, by name, until their scope ends: the
	// suite's fixture waits for its Gateway, and SetupSuite reuses what that opened.
	gwMu     sync.Mutex
	gateways map[string]*Gateway

	features       map[string]bool
	featuresSource string
	// suite names the suite, its fixtures' Gateway and its namespace prefix.
	suite string
}

// Setup runs in BeforeSuite: it reads the runner's environment, skips the whole suite with
// the reason when no cluster is configured (so `go test ./...` stays green and fast without
// one), checks the GatewayClass and the echo image, and creates a namespace that
// DeferCleanup deletes.
func Setup(ctx context.Context, suite string) *Env {
	GinkgoHelper()
	cfg, err := suiteenv.Load()
	Expect(err).NotTo(HaveOccurred(), "read the suite environment")
	// Both must be set explicitly, so that a KUBECONFIG left in a developer's shell does not
	// turn `go test ./...` into minutes of traffic against whatever cluster it names.
	if cfg.Kubeconfig == "" || os.Getenv(suiteenv.EnvGatewayClass) == "" {
		Skip(fmt.Sprintf("no cluster configured: set %s and %s (e.g. %s) to run the %s suite; `gatecheck run` sets both",
			suiteenv.EnvKubeconfig, suiteenv.EnvGatewayClass, suiteenv.DefaultGatewayClass, suite))
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	Expect(err).NotTo(HaveOccurred(), "load kubeconfig %s", cfg.Kubeconfig)
	restCfg.QPS, restCfg.Burst = 50, 100
	e := &Env{Config: cfg, REST: restCfg, Log: slog.New(slog.NewTextHandler(GinkgoWriter, nil)), suite: suite}
	e.Kube, err = kubernetes.NewForConfig(restCfg)
	Expect(err).NotTo(HaveOccurred())
	e.Dynamic, err = dynamic.NewForConfig(restCfg)
	Expect(err).NotTo(HaveOccurred())
	e.Applier, err = install.NewApplier(restCfg)
	Expect(err).NotTo(HaveOccurred())

	Expect(e.loadFeatures(ctx)).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "cluster %s, GatewayClass %s, features from %s: %s\n",
		restCfg.Host, cfg.GatewayClass, e.featuresSource, strings.Join(e.Features(), ", "))
	Expect(e.checkImage(ctx, cfg.EchoImage)).To(Succeed())

	ns, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "gatecheck-" + suite + "-",
		Labels:       map[string]string{"app.kubernetes.io/part-of": "gatecheck", "gatecheck.dev/suite": suite},
	}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "create the suite's namespace")
	e.Namespace = ns.Name
	DeferCleanup(func(ctx context.Context) error {
		if os.Getenv(EnvKeepNamespace) != "" {
			fmt.Fprintf(GinkgoWriter, "keeping namespace %s (%s is set)\n", e.Namespace, EnvKeepNamespace)
			return nil
		}
		err := e.Kube.CoreV1().Namespaces().Delete(ctx, e.Namespace, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	Expect(e.waitFor(ctx, "default ServiceAccount in namespace "+e.Namespace, time.Minute, func(ctx context.Context) (bool, string, error) {
		_, err := e.Kube.CoreV1().ServiceAccounts(e.Namespace).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not created yet", nil
		}
		return err == nil, "", err
	})).To(Succeed())
	return e
}

// loadFeatures takes the features from the runner (GATECHECK_FEATURES) or else from the
// GatewayClass's status.supportedFeatures, which must be Accepted.
func (e *Env) loadFeatures(ctx context.Context) error {
	gc, err := e.Dynamic.Resource(schema.GroupVersionResource{Group: GatewayAPIGroup, Version: "v1", Resource: "gatewayclasses"}).
		Get(ctx, e.Config.GatewayClass, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get GatewayClass %s (set %s to the class under test): %w", e.Config.GatewayClass, suiteenv.EnvGatewayClass, err)
	}
	conds, _, _ := unstructured.NestedSlice(gc.Object, "status", "conditions")
	if c := findCondition(conds, "Accepted"); c == nil || c.status != "True" {
		st := "no Accepted condition"
		if c != nil {
			st = fmt.Sprintf("Accepted=%s (%s: %s)", c.status, c.reason, c.message)
		}
		return fmt.Errorf("GatewayClass %s is not accepted by its controller: %s; is the implementation installed and running?", e.Config.GatewayClass, st)
	}
	if len(e.Config.Features) > 0 {
		e.features, e.featuresSource = setOf(e.Config.Features), suiteenv.EnvFeatures
		return nil
	}
	e.features, e.featuresSource = setOf(ClaimedFeatures(gc)), "GatewayClass "+e.Config.GatewayClass+" status.supportedFeatures"
	return nil
}

// ClaimedFeatures reads status.supportedFeatures of a GatewayClass, in both the current
// shape ([{name: X}]) and the v1.1 one ([X]).
func ClaimedFeatures(gc *unstructured.Unstructured) []string {
	list, _, _ := unstructured.NestedSlice(gc.Object, "status", "supportedFeatures")
	var out []string
	for _, f := range list {
		switch v := f.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			if n, ok := v["name"].(string); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func setOf(list []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range list {
		m[s] = true
	}
	return m
}

// Features lists the claimed features, sorted.
func (e *Env) Features() []string {
	out := slices.Collect(maps.Keys(e.features))
	sort.Strings(out)
	return out
}

// MissingFeatures returns the features of want that are not claimed.
func (e *Env) MissingFeatures(want ...features.FeatureName) []string {
	var out []string
	for _, f := range want {
		if !e.features[string(f)] {
			out = append(out, string(f))
		}
	}
	return out
}

// Require skips the current spec or container, naming the reason, unless every feature in
// want is claimed. The skip is reported as "not claimed" (SkipNotClaimed), which the gate
// never counts as "could not run".
func (e *Env) Require(want ...features.FeatureName) {
	GinkgoHelper()
	if missing := e.MissingFeatures(want...); len(missing) > 0 {
		SkipNotClaimed(e.Config.GatewayClass, e.featuresSource, missing)
	}
}

// SkipNotClaimed skips the current spec (or, from BeforeSuite, the whole suite) because the
// GatewayClass does not claim the features missing. It attaches a model.NotClaimed report
// entry first: that entry, not the message's wording, is what makes the report say
// "notClaimed" instead of "skipped" (reports/ingest), so a skip for any other reason (no
// cluster, a missing image) still reads as one.
func SkipNotClaimed(gatewayClass, source string, missing []string) {
	GinkgoHelper()
	name, v := model.NotClaimedEntry(model.NotClaimed{GatewayClass: gatewayClass, Features: missing, Source: source})
	AddReportEntry(name, v, ReportEntryVisibilityNever)
	Skip(fmt.Sprintf("not claimed: GatewayClass %s does not claim %s (features from %s)", gatewayClass, strings.Join(missing, ", "), source))
}

// imageListedWait bounds how long checkImage waits for a node to list the image: a kubelet
// lists an image loaded into its runtime at its next node status update
// (nodeStatusUpdateFrequency, 10 s by default), and a suite may start sooner than that after
// `gatecheck cluster load-images` (CI's run on an existing cluster did: the canary suite looked
// 10.3 s after the load and found nothing).
const imageListedWait = 30 * time.Second

// checkImage fails early, with what to do, when no node has the echo image: there is no
// registry, so a missing image would otherwise show up as Pods stuck in ErrImageNeverPull.
func (e *Env) checkImage(ctx context.Context, ref string) error {
	if e.Config.ImagesPulled {
		return nil // every node pulled it from the registry before the suite (--registry)
	}
	return e.awaitImage(ctx, ref, imageListedWait, time.Second)
}

// awaitImage waits up to timeout, checking every interval, for some node to list ref.
func (e *Env) awaitImage(ctx context.Context, ref string, timeout, interval time.Duration) error {
	truncated := false
	_, err := wait.For(ctx, "a node to list image "+ref+" in status.images", timeout, wait.Options{Interval: interval, Out: GinkgoWriter},
		func(ctx context.Context) (bool, string, error) {
			ok, cut, err := e.hasImage(ctx, ref)
			truncated = cut
			return ok, "no node lists it yet", err
		})
	if te := (*wait.TimeoutError)(nil); errors.As(err, &te) && truncated {
		// The kubelet lists at most maxNamesPerImage names per image: one with that many may
		// carry ref among the names left out (an image also pulled from registries under
		// other names). Unknown is not missing: go on; a Pod that cannot start says why.
		fmt.Fprintf(GinkgoWriter, "no node lists %s among the image names it reports, but some image has %d names, the most a kubelet reports: going on\n", ref, maxNamesPerImage)
		return nil
	}
	if te := (*wait.TimeoutError)(nil); errors.As(err, &te) {
		return fmt.Errorf("no node reports image %s in status.images after %s; load it first (`gatecheck cluster up` loads gatecheck's images) or set %s", ref, timeout, suiteenv.EnvEchoImage)
	}
	return err
}

// maxNamesPerImage is how many names a kubelet reports per image in status.images
// (kubelet's maxNamesPerImageInNodeStatus); the others are left out.
const maxNamesPerImage = 5

// HasImage reports whether some node lists the image in status.images (there is no
// registry to pull it from).
func (e *Env) HasImage(ctx context.Context, ref string) (bool, error) {
	ok, _, err := e.hasImage(ctx, ref)
	return ok, err
}

// hasImage is HasImage, and whether some listed image has maxNamesPerImage names, so that ref
// may be among the names the kubelet left out.
func (e *Env) hasImage(ctx context.Context, ref string) (found, truncated bool, err error) {
	nodes, err := e.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, false, fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		for _, img := range n.Status.Images {
			if slices.Contains(img.Names, ref) || slices.Contains(img.Names, "docker.io/"+ref) {
				return true, false, nil
			}
			truncated = truncated || len(img.Names) >= maxNamesPerImage
		}
	}
	return false, truncated, nil
}

// Data is the template data every fixture gets, with the scenario's values merged in.
func (e *Env) Data(extra map[string]any) map[string]any {
	d := map[string]any{
		"Namespace":    e.Namespace,
		"GatewayClass": e.Config.GatewayClass,
		"EchoImage":    e.Config.EchoImage,
		"PullPolicy":   "IfNotPresent",
	}
	maps.Copy(d, extra)
	return d
}

// Render renders a fixture with e.Data(extra), failing the spec on error.
func (e *Env) Render(fsys fs.FS, file string, extra map[string]any) []install.Object {
	GinkgoHelper()
	objs, err := Render(fsys, file, e.Data(extra))
	Expect(err).NotTo(HaveOccurred())
	return objs
}

// Apply registers the objects' deletion with DeferCleanup, then server-side applies them.
func (e *Env) Apply(ctx context.Context, objs []install.Object) {
	GinkgoHelper()
	DeferCleanup(func(ctx context.Context) error { return e.Applier.Delete(ctx, objs) })
	Expect(e.Applier.Apply(ctx, objs)).To(Succeed())
}

// Update server-side applies objects already registered for cleanup (a changed route).
func (e *Env) Update(ctx context.Context, objs []install.Object) error {
	return e.Applier.Apply(ctx, objs)
}

// WaitReady waits, with progress lines, until every Deployment is available, every Gateway
// Programmed with an address, and every route Accepted with ResolvedRefs by gateway.
func (e *Env) WaitReady(ctx context.Context, objs []install.Object, gateway string) {
	GinkgoHelper()
	for _, o := range objs {
		switch k := o.Obj.GetKind(); {
		case k == "Deployment":
			Expect(e.WaitDeployment(ctx, o.Obj.GetName())).To(Succeed())
		case k == "Gateway":
			_, err := e.WaitGateway(ctx, o.Obj.GetName())
			Expect(err).NotTo(HaveOccurred())
		case strings.HasSuffix(k, "Route") && o.Obj.GroupVersionKind().Group == GatewayAPIGroup:
			Expect(e.WaitRoute(ctx, o, gateway, true)).To(Succeed())
		}
	}
}

func (e *Env) get(ctx context.Context, o install.Object) (*unstructured.Unstructured, error) {
	gvr, err := e.Applier.GVR(o.Obj.GroupVersionKind())
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", o.Obj.GroupVersionKind(), err)
	}
	return e.Dynamic.Resource(gvr).Namespace(o.Obj.GetNamespace()).Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
}

func (e *Env) waitFor(ctx context.Context, what string, timeout time.Duration, check wait.Check) error {
	_, err := wait.For(ctx, what, timeout, wait.Options{Interval: 250 * time.Millisecond, Out: GinkgoWriter}, check)
	return err
}

// WaitGateway waits until the Gateway is Programmed (with an address under reach mode
// status-address), resolves how the runner reaches its listeners under the reach mode, and
// waits until every listener port accepts connections through that path. Under port-forward
// the forwards live until the enclosing suite or spec ends (DeferCleanup).
func (e *Env) WaitGateway(ctx context.Context, name string) (*Gateway, error) {
	GinkgoHelper()
	ref := install.Object{Obj: &unstructured.Unstructured{}}
	ref.Obj.SetAPIVersion(GatewayAPIGroup + "/v1")
	ref.Obj.SetKind("Gateway")
	ref.Obj.SetNamespace(e.Namespace)
	ref.Obj.SetName(name)
	needAddress := e.Config.ReachMode == ReachStatusAddress
	what := fmt.Sprintf("Gateway %s/%s Programmed", e.Namespace, name)
	if needAddress {
		what += " with an address"
	}
	var gw *unstructured.Unstructured
	err := e.waitFor(ctx, what, GatewayTimeout, func(ctx context.Context) (bool, string, error) {
		u, err := e.get(ctx, ref)
		if err != nil {
			return false, "", err
		}
		ok, st := gatewayReady(u, needAddress)
		gw = u
		return ok, st, nil
	})
	if err != nil {
		return nil, err
	}
	g, err := e.reach(ctx, gw)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(GinkgoWriter, "reaching %s\n", g)
	e.gwMu.Lock()
	if e.gateways == nil {
		e.gateways = map[string]*Gateway{}
	}
	e.gateways[name] = g
	e.gwMu.Unlock()
	DeferCleanup(func() {
		e.gwMu.Lock()
		defer e.gwMu.Unlock()
		if e.gateways[name] == g {
			delete(e.gateways, name)
		}
	})
	// Programmed says the data plane has its configuration, not that the runner can reach it:
	// a Service's endpoints reach kube-proxy's rules a moment later (seen: connections refused
	// for ~0.7 s after Programmed). Converge on a connection to every listener port, through
	// the same path the suite dials, before anything is measured, as upstream converges
	// before it judges.
	for _, port := range listenerPorts(gw) {
		if udpOnlyPort(gw, port) {
			continue // udp.go
		}
		hp := g.Addr(port)
		err = e.waitFor(ctx, fmt.Sprintf("Gateway %s/%s to accept connections on listener %d (%s)", e.Namespace, name, port, hp), GatewayTimeout, func(ctx context.Context) (bool, string, error) {
			if err := probeListener(ctx, g.Mode, hp); err != nil {
				return false, err.Error(), nil
			}
			return true, "", nil
		})
		if err != nil {
			return g, err
		}
	}
	return g, nil
}

// Gateway returns the Gateway named name as the last WaitGateway in scope resolved it, or nil.
func (e *Env) Gateway(name string) *Gateway {
	e.gwMu.Lock()
	defer e.gwMu.Unlock()
	return e.gateways[name]
}

// listenerPorts lists the distinct spec.listeners ports of a Gateway, sorted.
func listenerPorts(gw *unstructured.Unstructured) []int {
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	var out []int
	for _, l := range ls {
		m, _ := l.(map[string]any)
		port, _, _ := unstructured.NestedInt64(m, "port")
		if p := int(port); p > 0 && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// probeListener reports whether a connection to hp reaches the listener. A TCP connect says
// so for a routable address; through a port-forward the local connect always succeeds, and
// the forwarder resets the connection when it cannot reach the Pod's port, so the probe
// also waits briefly for a reset (a clean close or a quiet connection means it got through).
func probeListener(ctx context.Context, mode, hp string) error {
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", hp)
	if err != nil {
		return err
	}
	defer c.Close()
	if mode != ReachPortForward {
		return nil
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.As(err, &ne) && ne.Timeout():
		return nil
	}
	return fmt.Errorf("through the port-forward: %w", err)
}

// reach resolves how the runner dials the Gateway's listeners under the reach mode.
func (e *Env) reach(ctx context.Context, gw *unstructured.Unstructured) (*Gateway, error) {
	GinkgoHelper()
	g := &Gateway{Namespace: gw.GetNamespace(), Name: gw.GetName(), Address: GatewayAddress(gw), Mode: e.Config.ReachMode}
	if g.Mode == ReachStatusAddress {
		return g, nil
	}
	ports := listenerPorts(gw)
	var svc *corev1.Service
	err := e.waitFor(ctx, fmt.Sprintf("the data-plane Service of Gateway %s/%s", g.Namespace, g.Name), GatewayTimeout,
		func(ctx context.Context) (bool, string, error) {
			s, err := gatewayService(ctx, e.Kube, e.reachService(), g.Namespace, g.Name, ports, g.Mode == ReachNodePort)
			if err != nil {
				return false, err.Error(), nil
			}
			svc = s
			return true, "", nil
		})
	if err != nil {
		return nil, err
	}
	g.addrs = map[int]string{}
	switch g.Mode {
	case ReachNodePort:
		ip, err := nodeAddress(ctx, e.Kube)
		if err != nil {
			return nil, err
		}
		if g.addrs, err = nodePortAddrs(svc, ip, ports); err != nil {
			return nil, fmt.Errorf("Gateway %s/%s: %w", g.Namespace, g.Name, err)
		}
	case ReachPortForward:
		for _, port := range ports {
			f, err := e.forwardService(ctx, fmt.Sprintf("Gateway %s/%s listener %d", g.Namespace, g.Name, port), g.Name, port)
			if err != nil {
				return nil, err
			}
			g.addrs[port] = f.Addr()
		}
	default:
		return nil, fmt.Errorf("%s=%q: want %s, %s or %s", suiteenv.EnvReachMode, g.Mode, ReachStatusAddress, ReachNodePort, ReachPortForward)
	}
	return g, nil
}

// reachService is the profile's reach.service, as the runner passed it.
func (e *Env) reachService() impls.ReachService {
	return impls.ReachService{Namespace: e.Config.ReachServiceNamespace, Selector: e.Config.ReachServiceSelector}
}

// forwardService opens a port-forward to a ready Pod behind the Gateway's data-plane Service
// port, re-resolving the Service and Pod whenever the Pod goes away. DeferCleanup closes it.
func (e *Env) forwardService(ctx context.Context, what, gateway string, port int) (*forwarder, error) {
	GinkgoHelper()
	return e.forward(ctx, what, func(ctx context.Context) (podTarget, error) {
		svc, err := gatewayService(ctx, e.Kube, e.reachService(), e.Namespace, gateway, []int{port}, false)
		if err != nil {
			return podTarget{}, err
		}
		return servicePodTarget(ctx, e.Kube, svc, port)
	})
}

func (e *Env) forward(ctx context.Context, what string, target func(context.Context) (podTarget, error)) (*forwarder, error) {
	GinkgoHelper()
	if e.dialer == nil {
		d, err := newPodDialer(e.REST, e.Kube)
		if err != nil {
			return nil, err
		}
		e.dialer = d
	}
	f := &forwarder{
		what: what, out: GinkgoWriter, target: target, dial: e.dialer.dial,
		serving: func(ctx context.Context, t podTarget) (string, error) { return podServing(ctx, e.Kube, t) },
	}
	if err := startForward(ctx, f); err != nil {
		return nil, err
	}
	DeferCleanup(f.Close)
	return f, nil
}

// PodAddrs returns host:port to dial port on each Running, Ready Pod matching the label
// selector: the Pod IP under reach mode status-address (the runner routes to Pods), else a
// port-forward to that Pod which lasts until the enclosing spec or suite ends.
func (e *Env) PodAddrs(ctx context.Context, selector string, port int) ([]string, error) {
	GinkgoHelper()
	if e.Config.ReachMode == ReachStatusAddress {
		ips, err := e.PodIPs(ctx, selector)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, ip := range ips {
			out = append(out, HostPort(ip, port))
		}
		return out, nil
	}
	pods, err := e.Kube.CoreV1().Pods(e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list Pods %q in %s: %w", selector, e.Namespace, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		t := podTarget{Namespace: p.Namespace, Pod: p.Name, UID: p.UID, Port: int32(port)}
		// A fixed Pod: its records are what the caller reads, so another Pod will not do.
		f, err := e.forward(ctx, t.String(), func(ctx context.Context) (podTarget, error) {
			why, err := podServing(ctx, e.Kube, t)
			if err == nil && why != "" {
				err = errors.New(why)
			}
			return t, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, f.Addr())
	}
	return out, nil
}

// WaitRoute waits until the route is Accepted (and ResolvedRefs, if asked) by gateway for its
// current generation.
func (e *Env) WaitRoute(ctx context.Context, o install.Object, gateway string, resolvedRefs bool) error {
	what := fmt.Sprintf("%s %s/%s Accepted", o.Obj.GetKind(), o.Obj.GetNamespace(), o.Obj.GetName())
	if resolvedRefs {
		what += " with ResolvedRefs"
	}
	return e.waitFor(ctx, what+" by Gateway "+gateway, RouteTimeout, func(ctx context.Context) (bool, string, error) {
		u, err := e.get(ctx, o)
		if err != nil {
			return false, "", err
		}
		ok, st := routeReady(u, gateway, resolvedRefs)
		return ok, st, nil
	})
}

// WaitDeployment waits until the Deployment's replicas are all available, failing at once
// when a Pod is stuck in a state waiting cannot fix (a missing image).
func (e *Env) WaitDeployment(ctx context.Context, name string) error {
	return e.waitFor(ctx, fmt.Sprintf("Deployment %s/%s available", e.Namespace, name), DeploymentTimeout, func(ctx context.Context) (bool, string, error) {
		d, err := e.Kube.AppsV1().Deployments(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		m, err := toUnstructured(d)
		if err != nil {
			return false, "", err
		}
		m.SetGeneration(d.Generation)
		ok, st := deploymentReady(m)
		if ok {
			return true, st, nil
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return false, "", fmt.Errorf("Deployment %s spec.selector: %w", name, err)
		}
		pods, err := e.Kube.CoreV1().Pods(e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return false, "", err
		}
		for i := range pods.Items {
			if reason := podStuck(&pods.Items[i]); reason != "" {
				return false, "", errors.New(reason)
			}
		}
		return false, st, nil
	})
}

// PodIPs returns the IPs of the Running, Ready Pods matching the label selector.
func (e *Env) PodIPs(ctx context.Context, selector string) ([]string, error) {
	pods, err := e.Kube.CoreV1().Pods(e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list Pods %q in %s: %w", selector, e.Namespace, err)
	}
	var ips []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		ips = append(ips, p.Status.PodIP)
	}
	sort.Strings(ips)
	return ips, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Requests scales a request count by GATECHECK_TRAFFIC_SCALE, never below floor.
func (e *Env) Requests(n, floor int) int {
	return max(floor, int(float64(n)*e.Config.Scale+0.5))
}
