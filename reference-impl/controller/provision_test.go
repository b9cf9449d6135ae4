package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestProvisionedLabels checks the proxy Service, Deployment and Pod template carry the
// GEP-1762 labels (by which gatecheck's nodeport and port-forward modes find the data
// plane), while the selectors keep only the controller's own labels: a Deployment's selector
// is immutable, so a controller upgrade must not change it.
func TestProvisionedLabels(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("g", 64)
	cases := []struct {
		name, gateway, class string
		want                 map[string]string
	}{
		{"short names", "web", "gc", map[string]string{gwv1.GatewayNameLabelKey: "web", gwv1.GatewayClassNameLabelKey: "gc"}},
		{"gateway name too long for a label value", long, "gc", map[string]string{gwv1.GatewayClassNameLabelKey: "gc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := &provisioner{image: "img:dev", serviceType: corev1.ServiceTypeClusterIP, replicas: 1}
			gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: c.gateway, Namespace: "ns", UID: "u"}, Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(c.class)}}
			sel := map[string]string{LabelManagedBy: ManagedByValue, LabelProxyFor: gatewayHash(gw)}
			want := map[string]string{}
			for k, v := range sel {
				want[k] = v
			}
			for k, v := range c.want {
				want[k] = v
			}
			dep, svc := p.deployment(gw, "http://ctl"), p.service(gw, []int32{80})
			for what, got := range map[string]map[string]string{
				"Deployment metadata.labels":   dep.Labels,
				"Pod template metadata.labels": dep.Spec.Template.Labels,
				"Service metadata.labels":      svc.Labels,
				"Deployment spec.selector":     dep.Spec.Selector.MatchLabels,
				"Service spec.selector":        svc.Spec.Selector,
			} {
				w := want
				if strings.HasSuffix(what, "selector") {
					w = sel
				}
				if diff := cmp.Diff(w, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", what, diff)
				}
			}
		})
	}
}

// TestAddresses checks what a Gateway advertises for its proxy Service: the load balancer's
// ingress when there is one, nothing (and when to look again) while a LoadBalancer Service
// waits for one, and its ClusterIP once the wait ran out (no load balancer implementation)
// or for ClusterIP and NodePort Services.
func TestAddresses(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	const wait = 20 * time.Second
	ip, host := gwv1.IPAddressType, gwv1.HostnameAddressType
	svc := func(typ corev1.ServiceType, ingress ...corev1.LoadBalancerIngress) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
			Spec:       corev1.ServiceSpec{Type: typ, ClusterIP: "10.0.0.17"},
			Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
		}
	}
	cases := []struct {
		name      string
		svc       *corev1.Service
		after     time.Duration
		want      []gwv1.GatewayStatusAddress
		wantRetry time.Duration
	}{
		{"load balancer address", svc(corev1.ServiceTypeLoadBalancer, corev1.LoadBalancerIngress{IP: "10.0.1.1"}), time.Second,
			[]gwv1.GatewayStatusAddress{{Type: &ip, Value: "10.0.1.1"}}, 0},
		{"load balancer hostname", svc(corev1.ServiceTypeLoadBalancer, corev1.LoadBalancerIngress{Hostname: "lb.example"}), time.Second,
			[]gwv1.GatewayStatusAddress{{Type: &host, Value: "lb.example"}}, 0},
		{"pending load balancer waits", svc(corev1.ServiceTypeLoadBalancer), 5 * time.Second, nil, 15 * time.Second},
		{"no load balancer implementation: ClusterIP", svc(corev1.ServiceTypeLoadBalancer), wait,
			[]gwv1.GatewayStatusAddress{{Type: &ip, Value: "10.0.0.17"}}, 0},
		{"ClusterIP Service", svc(corev1.ServiceTypeClusterIP), 0, []gwv1.GatewayStatusAddress{{Type: &ip, Value: "10.0.0.17"}}, 0},
		{"no Service", nil, 0, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, retry := addresses(c.svc, created.Add(c.after), wait)
			if diff := cmp.Diff(c.want, got); diff != "" || retry != c.wantRetry {
				t.Errorf("addresses: retry %v, want %v; diff (-want +got):\n%s", retry, c.wantRetry, diff)
			}
		})
	}
}

// TestLBMemory: on a cluster whose load balancer never answered, one Service waiting the
// whole --lb-address-wait is enough: later Gateways advertise their ClusterIP at once. Once a
// Service is answered, every Service waits again.
func TestLBMemory(t *testing.T) {
	t.Parallel()
	const lbWait = 20 * time.Second
	start := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	svc := func(created time.Time, typ corev1.ServiceType, ingress ...corev1.LoadBalancerIngress) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
			Spec:       corev1.ServiceSpec{Type: typ, ClusterIP: "10.0.0.9"},
			Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
		}
	}
	var m lbMemory
	first := svc(start, corev1.ServiceTypeLoadBalancer)
	m.observe(first, start.Add(5*time.Second), lbWait)
	m.observe(svc(start, corev1.ServiceTypeClusterIP), start.Add(time.Minute), lbWait) // not a load balancer's
	if got := m.wait(lbWait); got != lbWait {
		t.Fatalf("before any Service waited the whole time: wait %v; want %v", got, lbWait)
	}
	m.observe(first, start.Add(lbWait), lbWait)
	if got := m.wait(lbWait); got != 0 {
		t.Fatalf("after a Service waited %v for nothing: wait %v; want 0", lbWait, got)
	}
	later := start.Add(time.Minute)
	next := svc(later, corev1.ServiceTypeLoadBalancer)
	if addrs, retry := addresses(next, later, m.wait(lbWait)); len(addrs) != 1 || addrs[0].Value != "10.0.0.9" || retry != 0 {
		t.Errorf("a new Gateway on a cluster without a load balancer: %v (retry %v); want its ClusterIP at once", addrs, retry)
	}
	// A load balancer answers after all (it started late): everyone waits again.
	m.observe(svc(start, corev1.ServiceTypeLoadBalancer, corev1.LoadBalancerIngress{IP: "10.0.1.3"}), later, lbWait)
	if got := m.wait(lbWait); got != lbWait {
		t.Errorf("after a Service got an address: wait %v; want %v", got, lbWait)
	}
	if addrs, retry := addresses(next, later.Add(time.Second), m.wait(lbWait)); addrs != nil || retry != lbWait-time.Second {
		t.Errorf("a pending Service once the load balancer answered: %v (retry %v); want none yet, retry in %v", addrs, retry, lbWait-time.Second)
	}
}
