package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestProxyServiceUDPPorts: UDP listener ports are exposed with protocol UDP, beside the TCP
// ones (a Service may carry one port number under both protocols).
func TestProxyServiceUDPPorts(t *testing.T) {
	t.Parallel()
	p := &provisioner{image: "img:dev", serviceType: corev1.ServiceTypeLoadBalancer, replicas: 1}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns", UID: "u"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gc"}}
	svc := p.service(gw, []int32{80, 5300}, 5300, 5301)
	type port struct {
		name  string
		num   int32
		proto corev1.Protocol
	}
	var got []port
	for _, sp := range svc.Spec.Ports {
		got = append(got, port{sp.Name, sp.Port, sp.Protocol})
		if sp.TargetPort.IntVal != sp.Port {
			t.Errorf("port %s: targetPort %v; want %d", sp.Name, sp.TargetPort, sp.Port)
		}
	}
	want := []port{{"port-80", 80, corev1.ProtocolTCP}, {"port-5300", 5300, corev1.ProtocolTCP}, {"udp-5300", 5300, corev1.ProtocolUDP}, {"udp-5301", 5301, corev1.ProtocolUDP}}
	if len(got) != len(want) {
		t.Fatalf("ports %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("port %d: %v; want %v", i, got[i], want[i])
		}
	}
	if h1, h2 := svc.Annotations[annotationSpecHash], p.service(gw, []int32{80, 5300}).Annotations[annotationSpecHash]; h1 == h2 {
		t.Error("the spec hash does not change when UDP ports are added: the Service would not be updated")
	}
}
