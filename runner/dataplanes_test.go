package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// An implementation played by the test: it sets each probe Gateway's status the way its case
// says, as a controller would after the probe created them.
func TestProbeDataPlanes(t *testing.T) {
	t.Parallel()
	programmed := func(gen int64, addrs ...string) map[string]any {
		var as []any
		for _, a := range addrs {
			as = append(as, map[string]any{"type": "IPAddress", "value": a})
		}
		return map[string]any{
			"conditions": []any{map[string]any{"type": "Programmed", "status": "True", "observedGeneration": gen}},
			"addresses":  as,
		}
	}
	for _, tc := range []struct {
		name     string
		status   map[string]map[string]any // Gateway name -> status; absent: never set
		separate bool
		why      string
	}{
		{"an address per Gateway", map[string]map[string]any{"probe-a": programmed(1, "10.0.1.3"), "probe-b": programmed(1, "10.0.1.4")},
			true, "got 10.0.1.3 and 10.0.1.4: a data plane per Gateway"},
		{"one address for both (Traefik's entryPoints)", map[string]map[string]any{"probe-a": programmed(1, "10.96.0.50"), "probe-b": programmed(1, "10.96.0.50")},
			false, "share the address 10.96.0.50: one data plane"},
		{"one of several addresses shared", map[string]map[string]any{"probe-a": programmed(1, "10.0.1.3", "fd00::3"), "probe-b": programmed(1, "10.0.1.4", "fd00::3")},
			false, "share the address fd00::3"},
		{"never Programmed", map[string]map[string]any{"probe-a": programmed(1, "10.0.1.3")},
			false, "not Programmed with addresses within 1s (Gateway probe-b: no Programmed condition yet)"},
		{"Programmed for an older generation", map[string]map[string]any{"probe-a": programmed(1, "10.0.1.3"), "probe-b": programmed(0, "10.0.1.4")},
			false, "Gateway probe-b: Programmed=True (observedGeneration 0 of 1)"},
		{"Programmed without addresses", map[string]map[string]any{"probe-a": programmed(1, "10.0.1.3"), "probe-b": programmed(1)},
			false, "Gateway probe-b: Programmed, but no status.addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs := kubefake.NewClientset()
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{gatewayGVR: "GatewayList"})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for ctx.Err() == nil {
					for name, st := range tc.status {
						gw, err := dyn.Resource(gatewayGVR).Namespace(probeNamespace).Get(ctx, name, metav1.GetOptions{})
						if err != nil || gw.Object["status"] != nil {
							continue
						}
						gw.SetGeneration(1)
						gw.Object["status"] = st
						_, _ = dyn.Resource(gatewayGVR).Namespace(probeNamespace).Update(ctx, gw, metav1.UpdateOptions{})
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			got := probeDataPlanes(ctx, cs, dyn, "gc", time.Second)
			if got.Separate != tc.separate || !strings.Contains(got.Why, tc.why) {
				t.Errorf("probeDataPlanes = %+v; want separate %v and a reason containing %q", got, tc.separate, tc.why)
			}
			// The probe's Gateways are of the class, HTTP on 80 like the suites' own.
			gw, err := dyn.Resource(gatewayGVR).Namespace(probeNamespace).Get(ctx, "probe-a", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if class := gw.Object["spec"].(map[string]any)["gatewayClassName"]; class != "gc" {
				t.Errorf("probe Gateway class = %v; want gc", class)
			}
			// Whatever it found, the probe removes its namespace.
			if _, err := cs.CoreV1().Namespaces().Get(ctx, probeNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("namespace %s after the probe: err %v; want it deleted", probeNamespace, err)
			}
		})
	}
}

// A probe that cannot create its objects answers "shared": the suites then run after the
// upstream suite, which is always safe.
func TestProbeDataPlanesCannotCreate(t *testing.T) {
	t.Parallel()
	cs := kubefake.NewClientset()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gatewayGVR: "GatewayList"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := probeDataPlanes(ctx, cs, dyn, "gc", time.Second)
	if got.Separate || got.Why == "" {
		t.Errorf("probeDataPlanes with a cancelled context = %+v; want not separate, with a reason", got)
	}
}
