//go:build cluster

package controller

// Route propagation and memory on a real cluster with the reference controller installed:
//
//	KUBECONFIG=... go test -tags cluster ./reference-impl/controller -run TestPropagation -v -timeout 60m
//
// PROPAGATION_ROUTES (default 1000) routes are created first; then PROPAGATION_SAMPLES (default
// 300: the p99 of 100 samples is their second largest, too noisy to judge a target by) routes are created one by one, each polled every 5 ms through the Gateway until three
// consecutive 200s. The same is measured with no other routes first, as the baseline.
// PROPAGATION_TRACE=1 logs each probe's create, create-returned and first-200 times (µs, host
// clock = node clock); with the controller run with --v, its "reconciled" lines carry the
// reconcile start, so the time splits into API write, watch, reconcile, proxy apply and poll.
// MEMORY_ROUTES (default 0 = skip) adds routes up to that count and reads the controller's
// process_resident_memory_bytes from its metrics port.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	benchNS      = "gatecheck-propagation"
	benchClass   = "gatecheck-reference"
	echoImage    = "registry.k8s.io/gateway-api/echo-basic:v1.5.1"
	pollInterval = 5 * time.Millisecond
)

func TestPropagation(t *testing.T) {
	ctx := context.Background()
	cfg, err := ctrl.GetConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	scheme, _ := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	setup(t, ctx, c)
	addr := gatewayAddress(t, ctx, c)
	t.Logf("gateway address %s", addr)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext, MaxIdleConnsPerHost: 4}}

	// The data plane must answer (404: no route yet) before propagation is measured; the
	// proxy Service's kube-proxy rules may trail the Gateway's Programmed condition.
	p := newProgress(time.Now(), 10*time.Second)
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		code := get(hc, addr, "nothing.bench.example")
		if code == 404 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("gateway %s does not answer 404 for an unknown host after 1m (last answer %d)", addr, code)
		}
		if d, ok := p.due(time.Now()); ok {
			t.Logf("waiting for gateway %s to answer 404 for an unknown host (%v so far, last answer %d)", addr, d, code)
		}
	}
	samples := envIntOr("PROPAGATION_SAMPLES", 300)
	baseline := propagate(t, ctx, c, hc, addr, "base", min(samples, 100))
	report(t, "baseline (no other routes)", baseline)

	n := envIntOr("PROPAGATION_ROUTES", 1000)
	createRoutes(t, ctx, c, "bulk", 0, n)
	waitRoute(t, ctx, hc, addr, fmt.Sprintf("bulk-%05d.bench.example", n-1))
	// Measure the steady state with the routes present, not the backlog of their status writes
	// (1,000 API writes the controller makes after serving them).
	waitAccepted(t, ctx, c, "bulk-", n)
	loaded := propagate(t, ctx, c, hc, addr, "probe", samples)
	report(t, fmt.Sprintf("with %d routes", n), loaded)
	t.Logf("p50 ratio loaded/baseline %.2f, p99 ratio %.2f", float64(latencyPct(loaded.lat, 50))/float64(latencyPct(baseline.lat, 50)), float64(latencyPct(loaded.lat, 99))/float64(latencyPct(baseline.lat, 99)))
	if loaded.bad > 0 {
		t.Errorf("%d responses other than 404/200 while routes propagated; want 0", loaded.bad)
	}

	if m := envIntOr("MEMORY_ROUTES", 0); m > n {
		before := controllerRSS(t, ctx, c)
		createRoutes(t, ctx, c, "bulk", n, m)
		waitRoute(t, ctx, hc, addr, fmt.Sprintf("bulk-%05d.bench.example", m-1))
		time.Sleep(10 * time.Second) // let status writes settle
		after := controllerRSS(t, ctx, c)
		t.Logf("controller memory: %.1f MB RSS with %d routes (%.1f MB with %d; ratio %.2f); target <= 150 MB", after/1e6, m, before/1e6, n, after/before)
		if after > 150e6 {
			t.Errorf("controller RSS %.1f MB with %d routes; want <= 150 MB", after/1e6, m)
		}
	}
}

type result struct {
	lat []time.Duration
	// create is how long each create call took (API server and etcd); serve is the rest, from
	// the create returning to the first of the 200s (watch delivery, reconcile, publish, proxy
	// apply, polling).
	create, serve []time.Duration
	bad           int64
}

func report(t *testing.T, what string, r result) {
	lo, hi := quantileCI(r.lat, 0.99, 0.95)
	t.Logf("propagation %s: n=%d p50=%v p99=%v (95%% CI %v..%v) max=%v non-404/200 responses=%d (target p99 <= 30ms, 0 errors)",
		what, len(r.lat), latencyPct(r.lat, 50), latencyPct(r.lat, 99), lo, hi, latencyPct(r.lat, 100), r.bad)
	t.Logf("  of which: create call p50=%v p99=%v; create returned -> first 200 p50=%v p99=%v",
		latencyPct(r.create, 50), latencyPct(r.create, 99), latencyPct(r.serve, 50), latencyPct(r.serve, 99))
}

// propagate creates routes one at a time and measures create -> first of 3 consecutive 200s.
func propagate(t *testing.T, ctx context.Context, c client.Client, hc *http.Client, addr, prefix string, n int) result {
	var r result
	for i := range n {
		host := fmt.Sprintf("%s-%05d.bench.example", prefix, i)
		route := benchRoute(fmt.Sprintf("%s-%05d", prefix, i), host)
		start := time.Now()
		if err := c.Create(ctx, route); err != nil {
			t.Fatalf("create route %s: %v", route.Name, err)
		}
		created := time.Now()
		ok := 0
		var first time.Time
		for ok < 3 {
			if time.Since(start) > 30*time.Second {
				t.Fatalf("route %s: no 3 consecutive 200s within 30s", route.Name)
			}
			sent := time.Now()
			code := get(hc, addr, host)
			switch code {
			case 200:
				if ok == 0 {
					first = time.Now()
				}
				ok++
				continue
			case 404:
			default:
				r.bad++
			}
			ok = 0
			// A probe every pollInterval from send to send, as the propagation suite
			// (suites/propagation) and gateway-api-bench poll, not pollInterval after each answer.
			time.Sleep(time.Until(sent.Add(pollInterval)))
		}
		r.lat = append(r.lat, first.Sub(start))
		r.create = append(r.create, created.Sub(start))
		r.serve = append(r.serve, first.Sub(created))
		if os.Getenv("PROPAGATION_TRACE") != "" {
			t.Logf("TRACE %s create %s created %s 200 %s lat %v", route.Name, start.Format("15:04:05.000000"), created.Format("15:04:05.000000"), first.Format("15:04:05.000000"), first.Sub(start))
		}
	}
	return r
}

func get(hc *http.Client, addr, host string) int {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitRoute waits until the Gateway answers 200 for host, printing progress every 10 s.
func waitRoute(t *testing.T, ctx context.Context, hc *http.Client, addr, host string) {
	start := time.Now()
	p := newProgress(start, 10*time.Second)
	for {
		code := get(hc, addr, host)
		if code == 200 {
			t.Logf("%s served after %v", host, time.Since(start).Truncate(time.Millisecond))
			return
		}
		if time.Since(start) > 10*time.Minute {
			t.Fatalf("route for %s not served after 10m (last answer %d)", host, code)
		}
		if d, ok := p.due(time.Now()); ok {
			t.Logf("waiting for %s to be served (%v so far, last answer %d)", host, d, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAccepted waits until n routes whose names start with prefix carry our Accepted
// condition, printing progress every 5 s.
func waitAccepted(t *testing.T, ctx context.Context, c client.Client, prefix string, n int) {
	start := time.Now()
	p := newProgress(start, 5*time.Second)
	for {
		var routes gwv1.HTTPRouteList
		if err := c.List(ctx, &routes, client.InNamespace(benchNS)); err != nil {
			t.Fatalf("list routes: %v", err)
		}
		accepted := 0
		for _, r := range routes.Items {
			if !strings.HasPrefix(r.Name, prefix) {
				continue
			}
			for _, p := range r.Status.Parents {
				if p.ControllerName == "gatecheck.dev/reference" && meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted)) {
					accepted++
					break
				}
			}
		}
		if accepted >= n {
			t.Logf("%d routes Accepted after %v", accepted, time.Since(start).Truncate(time.Millisecond))
			return
		}
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("only %d of %d routes Accepted after 5m", accepted, n)
		}
		if d, ok := p.due(time.Now()); ok {
			t.Logf("waiting for route statuses: %d of %d Accepted (%v so far)", accepted, n, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func benchRoute(name, host string) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNS},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "bench"}}},
			Hostnames:       []gwv1.Hostname{gwv1.Hostname(host)},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](8080)}}}}}},
		},
	}
}

func createRoutes(t *testing.T, ctx context.Context, c client.Client, prefix string, from, to int) {
	start := time.Now()
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				r := benchRoute(fmt.Sprintf("%s-%05d", prefix, i), fmt.Sprintf("%s-%05d.bench.example", prefix, i))
				if err := c.Create(ctx, r); err != nil && !apierrors.IsAlreadyExists(err) {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("create routes: %v", err)
	}
	t.Logf("created routes %d..%d in %v", from, to-1, time.Since(start).Truncate(time.Millisecond))
}

func setup(t *testing.T, ctx context.Context, c client.Client) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}
	// A previous run's namespace may still be terminating: wait for it to go.
	start := time.Now()
	p := newProgress(start, 5*time.Second)
	for ; ; time.Sleep(time.Second) {
		var old corev1.Namespace
		err := c.Get(ctx, client.ObjectKeyFromObject(ns), &old)
		if apierrors.IsNotFound(err) || (err == nil && old.DeletionTimestamp == nil) {
			break
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("namespace %s still terminating after 3m (err %v)", benchNS, err)
		}
		if d, ok := p.due(time.Now()); ok {
			t.Logf("waiting for namespace %s of a previous run to be deleted (%v so far)", benchNS, d)
		}
	}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("KEEP") == "" {
			_ = c.Delete(context.Background(), ns)
		}
	})
	lbl := map[string]string{"app": "echo"}
	objs := []client.Object{
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: benchNS},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: lbl},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "echo", Image: echoImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Env: []corev1.EnvVar{
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt(3000)}}, PeriodSeconds: 1},
					// Not BestEffort: the backend answers every probe request.
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}},
				}}}},
			},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: benchNS}, Spec: corev1.ServiceSpec{Selector: lbl, Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt(3000)}}}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: benchNS}, Spec: gwv1.GatewaySpec{GatewayClassName: benchClass, Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func gatewayAddress(t *testing.T, ctx context.Context, c client.Client) string {
	start := time.Now()
	p := newProgress(start, 10*time.Second)
	for {
		var gw gwv1.Gateway
		if err := c.Get(ctx, types.NamespacedName{Namespace: benchNS, Name: "bench"}, &gw); err == nil &&
			meta.IsStatusConditionTrue(gw.Status.Conditions, "Programmed") && len(gw.Status.Addresses) > 0 {
			var dep appsv1.Deployment
			if err := c.Get(ctx, types.NamespacedName{Namespace: benchNS, Name: "echo"}, &dep); err == nil && dep.Status.ReadyReplicas > 0 {
				return net.JoinHostPort(gw.Status.Addresses[0].Value, "80")
			}
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("gateway %s/bench not Programmed with an address (and echo ready) after 3m", benchNS)
		}
		if d, ok := p.due(time.Now()); ok {
			t.Logf("waiting for gateway %s/bench to be Programmed with an address, and echo ready (%v so far)", benchNS, d)
		}
		time.Sleep(2 * time.Second)
	}
}

// controllerRSS reads process_resident_memory_bytes from the controller pod's metrics port.
func controllerRSS(t *testing.T, ctx context.Context, c client.Client) float64 {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("gatecheck-system"), client.MatchingLabels{"app.kubernetes.io/name": "gatecheck-reference-controller"}); err != nil || len(pods.Items) == 0 {
		t.Fatalf("find controller pod: %v (%d pods)", err, len(pods.Items))
	}
	url := "http://" + net.JoinHostPort(pods.Items[0].Status.PodIP, "8080") + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("parse %q: %v", v, err)
			}
			return f
		}
	}
	t.Fatalf("%s: no process_resident_memory_bytes", url)
	return 0
}
