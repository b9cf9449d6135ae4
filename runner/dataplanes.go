package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/gatecheck/gatecheck/internal/wait"
)

var gatewayGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}

// probeNamespace holds the two Gateways of the data-plane probe; it is deleted when the probe
// ends, whatever it found.
const probeNamespace = "gatecheck-dataplane-probe"

// probeTimeout bounds the probe: an implementation slower than this to program two Gateways
// runs its traffic suites after the upstream suite, as if it shared one data plane.
const probeTimeout = 90 * time.Second

// dataPlanes is what the probe found.
type dataPlanes struct {
	// Separate: the two Gateways were Programmed with addresses that share none, so the
	// implementation serves each Gateway from its own data plane (its own address).
	Separate bool
	// Why says what was seen, for the console and the report.
	Why string
}

// probeDataPlanes asks whether the implementation gives each Gateway its own data plane, the
// condition for running gatecheck's traffic suites at the same time as the upstream suite: it
// creates two identical Gateways of the class (one HTTP listener on port 80, as the suites'
// Gateways have) and waits until both are Programmed with addresses. Addresses that share
// none mean separate data planes (the reference's proxy per Gateway, Envoy Gateway's or NGINX
// Gateway Fabric's Service per Gateway). One address for both (Traefik's entryPoints, a
// merged-Gateways mode) means the upstream suite's catch-all routes and the suites' would meet
// on one listener, where a correct implementation could fail either: then, as when the probe
// cannot tell (not Programmed in time, no addresses, an API error), the suites run after the
// upstream suite. A wrong "separate" is the only answer that could cost a verdict, so every
// doubt answers "shared".
func probeDataPlanes(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, class string, timeout time.Duration) dataPlanes {
	defer func() {
		// Not waited for: the namespace's deletion takes the Gateways with it, in the
		// background; on a cluster gatecheck did not create, teardown waits for it to be gone
		// before it uninstalls the implementation (waitNamespacesGone).
		_ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), probeNamespace, metav1.DeleteOptions{})
	}()
	shared := func(format string, a ...any) dataPlanes { return dataPlanes{Why: fmt.Sprintf(format, a...)} }
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNamespace, Labels: map[string]string{"gatecheck.dev/probe": "dataplanes", "app.kubernetes.io/part-of": "gatecheck"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return shared("could not create namespace %s: %v", probeNamespace, err)
	}
	names := []string{"probe-a", "probe-b"}
	for _, name := range names {
		gw := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1",
			"kind":       "Gateway",
			"metadata":   map[string]any{"name": name, "namespace": probeNamespace},
			"spec": map[string]any{
				"gatewayClassName": class,
				"listeners": []any{map[string]any{"name": "http", "protocol": "HTTP", "port": int64(80),
					"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "Same"}}}},
			},
		}}
		if _, err := dyn.Resource(gatewayGVR).Namespace(probeNamespace).Create(ctx, gw, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return shared("could not create Gateway %s/%s: %v", probeNamespace, name, err)
		}
	}
	addrs := make([][]string, len(names))
	_, err := wait.For(ctx, "the probe's two Gateways to be Programmed with addresses", timeout, wait.Options{Interval: 250 * time.Millisecond},
		func(ctx context.Context) (bool, string, error) {
			for i, name := range names {
				gw, err := dyn.Resource(gatewayGVR).Namespace(probeNamespace).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error(), nil
				}
				a, why := programmedAddresses(gw)
				if why != "" {
					return false, fmt.Sprintf("Gateway %s: %s", name, why), nil
				}
				addrs[i] = a
			}
			return true, "", nil
		})
	if err != nil {
		var te *wait.TimeoutError
		if errors.As(err, &te) {
			return shared("%s/%s and %s not Programmed with addresses within %s (%s)", probeNamespace, names[0], names[1], timeout, te.LastStatus)
		}
		return shared("%v", err)
	}
	for _, a := range addrs[0] {
		if slices.Contains(addrs[1], a) {
			return shared("Gateways %s/%s and %s share the address %s: one data plane", probeNamespace, names[0], names[1], a)
		}
	}
	return dataPlanes{Separate: true, Why: fmt.Sprintf("Gateways %s/%s and %s got %s and %s: a data plane per Gateway",
		probeNamespace, names[0], names[1], strings.Join(addrs[0], ","), strings.Join(addrs[1], ","))}
}

// programmedAddresses returns a Gateway's status addresses once it is Programmed for its
// current generation, else why not yet.
func programmedAddresses(gw *unstructured.Unstructured) ([]string, string) {
	conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
	programmed := false
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Programmed" {
			continue
		}
		og, _ := m["observedGeneration"].(int64)
		if m["status"] != "True" || og != gw.GetGeneration() {
			return nil, fmt.Sprintf("Programmed=%v (observedGeneration %d of %d)", m["status"], og, gw.GetGeneration())
		}
		programmed = true
	}
	if !programmed {
		return nil, "no Programmed condition yet"
	}
	list, _, _ := unstructured.NestedSlice(gw.Object, "status", "addresses")
	var out []string
	for _, a := range list {
		m, _ := a.(map[string]any)
		if v, _ := m["value"].(string); v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, "Programmed, but no status.addresses"
	}
	return out, ""
}
