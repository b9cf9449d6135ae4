package gwtest

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	// Decode the way the dynamic client does (JSON numbers become int64), or generation
	// and counts would be float64 and read as absent.
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	if _, ok := m["kind"]; !ok {
		m["apiVersion"], m["kind"] = "test/v1", "Test"
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		t.Fatalf("decode test object: %v", err)
	}
	return u
}

func TestGatewayReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, status string
		ok                 bool
		// noAddress: the reach mode (nodeport, port-forward) does not dial status.addresses.
		noAddress bool
	}{
		{"programmed", `
metadata: {generation: 2}
status:
  addresses: [{type: IPAddress, value: 10.96.0.20}]
  conditions: [{type: Programmed, status: "True", observedGeneration: 2}]`, "Programmed, address 10.96.0.20", true, false},
		{"stale generation", `
metadata: {generation: 3}
status:
  addresses: [{value: 10.96.0.20}]
  conditions: [{type: Programmed, status: "True", observedGeneration: 2}]`, "Programmed is for generation 2; current 3", false, false},
		{"not programmed", `
metadata: {generation: 1}
status:
  conditions: [{type: Programmed, status: "False", reason: AddressNotAssigned, message: waiting, observedGeneration: 1}]`, "Programmed=False (AddressNotAssigned: waiting)", false, false},
		{"no address", `
metadata: {generation: 1}
status:
  conditions: [{type: Programmed, status: "True", observedGeneration: 1}]`, "Programmed but status.addresses is empty", false, false},
		{"no address, none needed", `
metadata: {generation: 1}
status:
  conditions: [{type: Programmed, status: "True", observedGeneration: 1}]`, "Programmed, no address", true, true},
		{"not programmed, no address needed", `
metadata: {generation: 1}
status:
  conditions: [{type: Programmed, status: "False", reason: Pending, message: waiting, observedGeneration: 1}]`, "Programmed=False (Pending: waiting)", false, true},
		{"no status", `metadata: {generation: 1}`, "no Programmed condition yet", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ok, st := gatewayReady(obj(t, c.yaml), !c.noAddress)
			if ok != c.ok || st != c.status {
				t.Errorf("gatewayReady() = %v, %q; want %v, %q", ok, st, c.ok, c.status)
			}
		})
	}
}

func TestRouteReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml   string
		resolvedRefs bool
		ok           bool
		status       string
	}{
		{"accepted and resolved", `
metadata: {generation: 1}
status:
  parents:
  - parentRef: {name: gw}
    conditions:
    - {type: Accepted, status: "True", observedGeneration: 1}
    - {type: ResolvedRefs, status: "True", observedGeneration: 1}`, true, true, "Accepted+ResolvedRefs"},
		{"refs unresolved", `
metadata: {generation: 1}
status:
  parents:
  - parentRef: {name: gw}
    conditions:
    - {type: Accepted, status: "True", observedGeneration: 1}
    - {type: ResolvedRefs, status: "False", reason: BackendNotFound, message: no svc, observedGeneration: 1}`, true, false, "ResolvedRefs=False (BackendNotFound: no svc)"},
		{"refs unresolved but only Accepted wanted", `
metadata: {generation: 1}
status:
  parents:
  - parentRef: {name: gw}
    conditions:
    - {type: Accepted, status: "True", observedGeneration: 1}
    - {type: ResolvedRefs, status: "False", observedGeneration: 1}`, false, true, "Accepted"},
		{"other parent only", `
metadata: {generation: 1}
status:
  parents:
  - parentRef: {name: other}
    conditions: [{type: Accepted, status: "True"}]`, true, false, "no status for parent Gateway gw (parents: other)"},
		{"stale", `
metadata: {generation: 4}
status:
  parents:
  - parentRef: {name: gw}
    conditions:
    - {type: Accepted, status: "True", observedGeneration: 3}
    - {type: ResolvedRefs, status: "True", observedGeneration: 4}`, true, false, "Accepted is for generation 3; current 4"},
		{"no status", `metadata: {generation: 1}`, true, false, "no status.parents yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ok, st := routeReady(obj(t, c.yaml), "gw", c.resolvedRefs)
			if ok != c.ok || st != c.status {
				t.Errorf("routeReady() = %v, %q; want %v, %q", ok, st, c.ok, c.status)
			}
		})
	}
}

func TestDeploymentReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, status string
		ok                 bool
	}{
		{"available", `
metadata: {generation: 1}
spec: {replicas: 2}
status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2}`, "2/2 available", true},
		{"rolling", `
metadata: {generation: 2}
spec: {replicas: 2}
status: {observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2}`, "1/2 updated, 2/2 available, 3 total", false},
		{"default one replica", `
metadata: {generation: 1}
status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1}`, "1/1 available", true},
		{"unobserved", `
metadata: {generation: 2}
status: {observedGeneration: 1}`, "status is for generation 1; current 2", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ok, st := deploymentReady(obj(t, c.yaml))
			if ok != c.ok || st != c.status {
				t.Errorf("deploymentReady() = %v, %q; want %v, %q", ok, st, c.ok, c.status)
			}
		})
	}
}

func TestPodStuck(t *testing.T) {
	t.Parallel()
	p := &corev1.Pod{}
	p.Namespace, p.Name = "ns", "echo-1"
	if got := podStuck(p); got != "" {
		t.Fatalf("podStuck(empty pod) = %q; want empty", got)
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "echo", Image: "img:dev", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "not present"}}}}
	if got := podStuck(p); !strings.Contains(got, "ErrImageNeverPull") || !strings.Contains(got, "img:dev") {
		t.Fatalf("podStuck() = %q; want the reason and the image named", got)
	}
}

func TestClaimedFeatures(t *testing.T) {
	t.Parallel()
	now := obj(t, `status: {supportedFeatures: [{name: HTTPRoute}, {name: GRPCRoute}]}`)
	old := obj(t, `status: {supportedFeatures: [HTTPRoute, TCPRoute]}`)
	if got := strings.Join(ClaimedFeatures(now), ","); got != "HTTPRoute,GRPCRoute" {
		t.Errorf("ClaimedFeatures(current shape) = %s; want HTTPRoute,GRPCRoute", got)
	}
	if got := strings.Join(ClaimedFeatures(old), ","); got != "HTTPRoute,TCPRoute" {
		t.Errorf("ClaimedFeatures(v1.1 shape) = %s; want HTTPRoute,TCPRoute", got)
	}
}
