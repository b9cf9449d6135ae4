package gwtest

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/impls"
)

func svc(name, gateway string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: ports, Selector: map[string]string{"app": "proxy"}},
	}
	if gateway != "" {
		s.Labels = map[string]string{gwv1.GatewayNameLabelKey: gateway}
	}
	return s
}

// egLookup finds data-plane Services the way an Envoy Gateway profile would.
var egLookup = impls.ReachService{Namespace: "eg-system", Selector: "owner={name},owner-ns={namespace}"}

func egService(name, gateway, gatewayNS string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "eg-system", Labels: map[string]string{"owner": gateway, "owner-ns": gatewayNS}},
		Spec:       corev1.ServiceSpec{Ports: ports, Selector: map[string]string{"app": "envoy"}},
	}
}

func sport(name string, port, nodePort int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, NodePort: nodePort, TargetPort: target, Protocol: corev1.ProtocolTCP}
}

func TestGatewayService(t *testing.T) {
	t.Parallel()
	p80 := sport("http", 80, 0, intstr.FromInt32(8080))
	p80n := sport("http", 80, 30080, intstr.FromInt32(8080))
	p90 := sport("tcp", 90, 0, intstr.FromInt32(90))
	cases := []struct {
		name      string
		objs      []runtime.Object
		ports     []int
		nodePorts bool
		want      string // Service name, or
		wantErr   []string
		lookup    impls.ReachService
	}{
		{"one labelled Service", []runtime.Object{svc("gw-proxy", "gw", "", p80), svc("other", "other-gw", "", p80)}, []int{80}, false, "gw-proxy", nil, impls.ReachService{}},
		{"no labelled Service names label, namespace and Gateway", []runtime.Object{svc("gw-proxy", "", "", p80)}, []int{80}, false, "",
			[]string{"no Service in namespace ns matches " + gwv1.GatewayNameLabelKey + "=gw", "Gateway ns/gw"}, impls.ReachService{}},
		{"several: the one with every listener port wins over the first by name", []runtime.Object{svc("a-metrics", "gw", "", p90), svc("b-proxy", "gw", "", p80, p90)}, []int{80, 90}, false, "b-proxy", nil, impls.ReachService{}},
		{"several with every port: first by name", []runtime.Object{svc("b", "gw", "", p80), svc("a", "gw", "", p80)}, []int{80}, false, "a", nil, impls.ReachService{}},
		{"nodeport prefers the Service with node ports", []runtime.Object{svc("a", "gw", corev1.ServiceTypeClusterIP, p80), svc("b", "gw", corev1.ServiceTypeNodePort, p80n)}, []int{80}, true, "b", nil, impls.ReachService{}},
		{"no Service has the listener port", []runtime.Object{svc("a", "gw", "", p90)}, []int{80}, false, "",
			[]string{"spec.ports for every listener port [80]", "a [90]"}, impls.ReachService{}},
		{"the profile's selector in the controller's namespace (as Envoy Gateway runs its proxies)",
			[]runtime.Object{svc("same-ns-decoy", "gw", "", p80), egService("envoy-ns-gw-1234", "gw", "ns", p80), egService("envoy-other", "gw", "other-ns", p80)},
			[]int{80}, false, "envoy-ns-gw-1234", nil, egLookup},
		{"the profile's selector matches nothing: the error names namespace and selector",
			[]runtime.Object{svc("gw-proxy", "gw", "", p80)}, []int{80}, false, "",
			[]string{"no Service in namespace eg-system matches owner=gw,owner-ns=ns", "reach.service.namespace"}, egLookup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := gatewayService(context.Background(), fake.NewClientset(c.objs...), c.lookup, "ns", "gw", c.ports, c.nodePorts)
			if c.wantErr != nil {
				if err == nil {
					t.Fatalf("got Service %s; want an error", got.Name)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q; want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != c.want {
				t.Errorf("got Service %s; want %s", got.Name, c.want)
			}
		})
	}
}

func TestNodePortAddrs(t *testing.T) {
	t.Parallel()
	np := svc("gw-proxy", "gw", corev1.ServiceTypeNodePort, sport("a", 80, 30080, intstr.FromInt32(80)), sport("b", 9000, 30900, intstr.FromInt32(9000)))
	got, err := nodePortAddrs(np, "192.0.2.2", []int{80, 9000})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]string{80: "192.0.2.2:30080", 9000: "192.0.2.2:30900"}, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if got, _ := nodePortAddrs(np, "fd00::2", []int{80}); got[80] != "[fd00::2]:30080" {
		t.Errorf("IPv6 node: got %q; want [fd00::2]:30080", got[80])
	}
	_, err = nodePortAddrs(svc("gw-proxy", "gw", "", sport("a", 80, 0, intstr.FromInt32(80))), "192.0.2.2", []int{80})
	for _, w := range []string{"Service ns/gw-proxy", "spec.ports[port=80].nodePort is unset", "spec.type ClusterIP"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ClusterIP Service: error %v; want it to contain %q", err, w)
		}
	}
}

func node(name string, ready bool, addrs ...corev1.NodeAddress) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}, Addresses: addrs,
	}}
}

func TestNodeAddress(t *testing.T) {
	t.Parallel()
	internal := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	host := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n"}
	cases := []struct {
		name    string
		objs    []runtime.Object
		want    string
		wantErr string
	}{
		{"first Ready node by name", []runtime.Object{node("n2", true, internal("10.0.0.2")), node("n1", true, internal("10.0.0.1"))}, "10.0.0.1", ""},
		{"skips a node not Ready", []runtime.Object{node("n1", false, internal("10.0.0.1")), node("n2", true, host, internal("10.0.0.2"))}, "10.0.0.2", ""},
		{"no InternalIP", []runtime.Object{node("n1", true, host), node("n2", false, internal("10.0.0.2"))}, "", "n1: no status.addresses entry of type InternalIP; n2: not Ready"},
		{"no nodes", nil, "", "no nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := nodeAddress(context.Background(), fake.NewClientset(c.objs...))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %s", got, err, c.want)
			}
		})
	}
}

func slice(svcName string, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svcName + "-x", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func ep(pod string, ready, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{"10.1.0.1"},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Terminating: ptr.To(terminating)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: pod, UID: types.UID("uid-" + pod)},
	}
}

func pod(name string, ready, deleting bool, ports ...corev1.ContainerPort) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "proxy"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "proxy", Ports: ports}}},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{}
		p.Finalizers = []string{"test"}
	}
	return p
}

func TestServicePodTarget(t *testing.T) {
	t.Parallel()
	s := svc("gw-proxy", "gw", "", sport("http", 80, 0, intstr.FromString("web")), sport("tcp", 9000, 0, intstr.FromInt32(9000)))
	cases := []struct {
		name    string
		objs    []runtime.Object
		port    int
		want    podTarget
		wantErr string
	}{
		{"ready endpoint, target port from the slice port of the same name",
			[]runtime.Object{slice("gw-proxy", "http", 8080, ep("p-b", true, false), ep("p-c", true, true), ep("p-a", false, false))}, 80,
			podTarget{Namespace: "ns", Pod: "p-b", UID: "uid-p-b", Port: 8080}, ""},
		{"first ready endpoint by name",
			[]runtime.Object{slice("gw-proxy", "http", 8080, ep("p-z", true, false), ep("p-y", true, false))}, 80,
			podTarget{Namespace: "ns", Pod: "p-y", UID: "uid-p-y", Port: 8080}, ""},
		{"only terminating or unready endpoints",
			[]runtime.Object{slice("gw-proxy", "http", 8080, ep("p-c", true, true), ep("p-a", false, false))}, 80,
			podTarget{}, "Service ns/gw-proxy port 80 (name \"http\"): no ready, non-terminating Pod endpoint in its EndpointSlices (2 endpoints seen)"},
		{"no slices: Pods of the selector, named targetPort",
			[]runtime.Object{pod("p-a", false, false), pod("p-b", true, true), pod("p-c", true, false, corev1.ContainerPort{Name: "web", ContainerPort: 8081})}, 80,
			podTarget{Namespace: "ns", Pod: "p-c", UID: "uid-p-c", Port: 8081}, ""},
		{"no slices: named targetPort the Pod lacks",
			[]runtime.Object{pod("p-c", true, false)}, 80,
			podTarget{}, `targetPort "web": Pod ns/p-c has no container port of that name`},
		{"no slices: numeric targetPort",
			[]runtime.Object{pod("p-c", true, false)}, 9000,
			podTarget{Namespace: "ns", Pod: "p-c", UID: "uid-p-c", Port: 9000}, ""},
		{"no slices, no ready Pod",
			[]runtime.Object{pod("p-a", false, false)}, 80,
			podTarget{}, "no ready, non-terminating Pod matches its spec.selector app=proxy (1 Pods)"},
		{"not a Service port", nil, 81, podTarget{}, "Service ns/gw-proxy spec.ports: no port 81 (ports: [80 9000])"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := servicePodTarget(context.Background(), fake.NewClientset(c.objs...), s, c.port)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodServing(t *testing.T) {
	t.Parallel()
	kube := fake.NewClientset(pod("ok", true, false), pod("unready", false, false), pod("going", true, true))
	cases := []struct {
		t    podTarget
		want string
	}{
		{podTarget{Namespace: "ns", Pod: "ok", UID: "uid-ok"}, ""},
		{podTarget{Namespace: "ns", Pod: "ok", UID: "old"}, "Pod ns/ok was replaced (uid uid-ok; forwarded to old)"},
		{podTarget{Namespace: "ns", Pod: "unready", UID: "uid-unready"}, "Pod ns/unready is not Ready"},
		{podTarget{Namespace: "ns", Pod: "going", UID: "uid-going"}, "Pod ns/going is terminating"},
		{podTarget{Namespace: "ns", Pod: "gone"}, "Pod ns/gone was deleted"},
	}
	for _, c := range cases {
		got, err := podServing(context.Background(), kube, c.t)
		if err != nil || got != c.want {
			t.Errorf("podServing(%s) = %q, %v; want %q", c.t.Pod, got, err, c.want)
		}
	}
}

func TestGatewayAddr(t *testing.T) {
	t.Parallel()
	if got := Direct("10.0.0.1").Addr(80); got != "10.0.0.1:80" {
		t.Errorf("Direct(10.0.0.1).Addr(80) = %q; want 10.0.0.1:80", got)
	}
	if got := Direct("fd00::1").Addr(80); got != "[fd00::1]:80" {
		t.Errorf("Direct(fd00::1).Addr(80) = %q; want [fd00::1]:80", got)
	}
	if err := Direct("10.0.0.1").UnknownPort(1234); err != nil {
		t.Errorf("Direct: UnknownPort(1234) = %v; want nil (any port dials the address)", err)
	}
	g := &Gateway{Namespace: "ns", Name: "gw", Mode: ReachPortForward, addrs: map[int]string{80: "127.0.0.1:40000"}}
	if got := g.Addr(80); got != "127.0.0.1:40000" {
		t.Errorf("forwarded Addr(80) = %q; want 127.0.0.1:40000", got)
	}
	if got := g.Addr(81); got != "127.0.0.1:0" {
		t.Errorf("forwarded Addr(81) = %q; want 127.0.0.1:0 (refuses)", got)
	}
	err := g.UnknownPort(81)
	if err == nil || !strings.Contains(err.Error(), "Gateway ns/gw has no spec.listeners port 81 reachable under reach mode port-forward (listener ports: [80])") {
		t.Errorf("UnknownPort(81) = %v; want it to name the Gateway, port, mode and listener ports", err)
	}
}
