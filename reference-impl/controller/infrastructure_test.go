package controller

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// TestInfrastructureMetadataOnEveryProvisionedObject: spec.infrastructure labels and
// annotations go onto the proxy Deployment, its Pod template, the Service and the delivery
// Secret, beside the GEP-1762 labels, and follow the Gateway when they change (a removed one
// is removed), while the selectors stay the controller's own.
func TestInfrastructureMetadataOnEveryProvisionedObject(t *testing.T) {
	t.Parallel()
	c, r, gw := ownershipFixture(t, nil)
	ctx := context.Background()
	setInfra := func(labels map[gwv1.LabelKey]gwv1.LabelValue, ann map[gwv1.AnnotationKey]gwv1.AnnotationValue) {
		t.Helper()
		var g gwv1.Gateway
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
			t.Fatal(err)
		}
		g.Spec.Infrastructure = &gwv1.GatewayInfrastructure{Labels: labels, Annotations: ann}
		g.Generation++
		if err := c.Update(ctx, &g); err != nil {
			t.Fatal(err)
		}
		reconcileOnce(t, r)
	}
	type metaOf struct {
		what        string
		labels, ann map[string]string
	}
	objects := func() []metaOf {
		t.Helper()
		var dep appsv1.Deployment
		var svc corev1.Service
		var sec corev1.Secret
		for o, name := range map[client.Object]string{&dep: "gatecheck-gw", &svc: "gatecheck-gw", &sec: "gatecheck-gw-delivery"} {
			if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: name}, o); err != nil {
				t.Fatalf("%T %s: %v", o, name, err)
			}
		}
		if diff := cmp.Diff(map[string]string{LabelManagedBy: ManagedByValue, LabelProxyFor: gatewayHash(gw)}, dep.Spec.Selector.MatchLabels); diff != "" {
			t.Errorf("Deployment selector (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(dep.Spec.Selector.MatchLabels, svc.Spec.Selector); diff != "" {
			t.Errorf("Service selector (-Deployment's +Service's):\n%s", diff)
		}
		return []metaOf{
			{"Deployment", dep.Labels, dep.Annotations},
			{"Pod template", dep.Spec.Template.Labels, dep.Spec.Template.Annotations},
			{"Service", svc.Labels, svc.Annotations},
			{"Secret", sec.Labels, sec.Annotations},
		}
	}
	check := func(step string, wantLabels, wantAnn, gone map[string]string) {
		t.Helper()
		for _, o := range objects() {
			for k, v := range wantLabels {
				if o.labels[k] != v {
					t.Errorf("%s: %s label %s: got %q; want %q (labels %v)", step, o.what, k, o.labels[k], v, o.labels)
				}
			}
			for k, v := range wantAnn {
				if o.ann[k] != v {
					t.Errorf("%s: %s annotation %s: got %q; want %q (annotations %v)", step, o.what, k, o.ann[k], v, o.ann)
				}
			}
			for k := range gone {
				if _, ok := o.labels[k]; ok {
					t.Errorf("%s: %s still has label %s; want it removed with spec.infrastructure's", step, o.what, k)
				}
				if _, ok := o.ann[k]; ok {
					t.Errorf("%s: %s still has annotation %s; want it removed with spec.infrastructure's", step, o.what, k)
				}
			}
		}
	}

	setInfra(map[gwv1.LabelKey]gwv1.LabelValue{"team": "edge", "example.com/tier": "front"}, map[gwv1.AnnotationKey]gwv1.AnnotationValue{"example.com/owner": "edge"})
	check("first", map[string]string{"team": "edge", "example.com/tier": "front", gwv1.GatewayNameLabelKey: "gw", gwv1.GatewayClassNameLabelKey: "gc"},
		map[string]string{"example.com/owner": "edge"}, nil)

	setInfra(map[gwv1.LabelKey]gwv1.LabelValue{"team": "core"}, nil)
	check("changed", map[string]string{"team": "core", gwv1.GatewayNameLabelKey: "gw"}, nil,
		map[string]string{"example.com/tier": "", "example.com/owner": ""})

	var g gwv1.Gateway
	if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
		t.Fatal(err)
	}
	if a := meta.FindStatusCondition(g.Status.Conditions, "Accepted"); a == nil || a.Status != metav1.ConditionTrue {
		t.Errorf("Accepted: got %+v; want True", a)
	}
}

// TestInfrastructureCannotOverrideControllerKeys: every label and annotation key the
// provisioner sets itself, given another value in spec.infrastructure, makes translate refuse
// the Gateway (Accepted=False, Invalid, naming the key), so no user label can change the
// proxies' selector or the GEP-1762 labels; the same value is accepted. The keys are read from
// the provisioned objects, so a key the provisioner starts setting is covered here.
func TestInfrastructureCannotOverrideControllerKeys(t *testing.T) {
	t.Parallel()
	p := &provisioner{image: "img:dev", serviceType: corev1.ServiceTypeLoadBalancer, replicas: 1}
	base := func() *gwv1.Gateway {
		return &gwv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", Generation: 1, UID: "u"},
			Spec: gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
				Addresses: []gwv1.GatewaySpecAddress{{Value: "10.0.1.254"}}},
		}
	}
	gw := base()
	dep, svc := p.deployment(gw, "https://ctl"), p.service(gw, []int32{80})
	labels := map[string]string{}
	for _, m := range []map[string]string{dep.Labels, dep.Spec.Template.Labels, svc.Labels} {
		maps.Copy(labels, m)
	}
	ann := map[string]string{}
	for _, m := range []map[string]string{dep.Annotations, dep.Spec.Template.Annotations, svc.Annotations} {
		maps.Copy(ann, m)
	}
	if len(labels) < 4 || len(ann) < 2 {
		t.Fatalf("provisioned keys: labels %v, annotations %v; want the selector and GEP-1762 labels, the spec hash and the load balancer annotation", labels, ann)
	}
	accepted := func(g *gwv1.Gateway) *metav1.Condition {
		out := translate.Translate(&translate.Input{
			ControllerName: DefaultControllerName,
			GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "gc", Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: DefaultControllerName}}},
			Gateways:       []*gwv1.Gateway{g},
		})
		res := out.Gateways[types.NamespacedName{Namespace: g.Namespace, Name: g.Name}]
		if res == nil {
			t.Fatalf("no translation result for Gateway %s", g.Name)
		}
		return meta.FindStatusCondition(res.Status.Conditions, "Accepted")
	}
	for _, field := range []string{"labels", "annotations"} {
		keys := labels
		if field == "annotations" {
			keys = ann
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			g := base()
			g.Spec.Infrastructure = &gwv1.GatewayInfrastructure{}
			if field == "labels" {
				g.Spec.Infrastructure.Labels = map[gwv1.LabelKey]gwv1.LabelValue{gwv1.LabelKey(k): "someone-else"}
			} else {
				g.Spec.Infrastructure.Annotations = map[gwv1.AnnotationKey]gwv1.AnnotationValue{gwv1.AnnotationKey(k): "someone-else"}
			}
			c := accepted(g)
			want := "spec.infrastructure." + field + "[" + k + "]"
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(gwv1.GatewayReasonInvalid) || !strings.Contains(c.Message, want) {
				t.Errorf("%s %s=someone-else: Accepted %+v; want False, reason Invalid, message naming %s", field, k, c, want)
			}
		}
	}
	g := base()
	g.Spec.Infrastructure = &gwv1.GatewayInfrastructure{Labels: map[gwv1.LabelKey]gwv1.LabelValue{gwv1.GatewayNameLabelKey: "gw", gwv1.GatewayClassNameLabelKey: "gc", "team": "edge"}}
	if c := accepted(g); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("GEP-1762 labels with the controller's own values: Accepted %+v; want True", c)
	}
}

// TestServiceAsksForSpecAddresses: the proxy Service asks the load balancer for the values of
// spec.addresses (MetalLB's annotation), none when no entry has a value (any address).
func TestServiceAsksForSpecAddresses(t *testing.T) {
	t.Parallel()
	ip := gwv1.IPAddressType
	cases := []struct {
		name  string
		addrs []gwv1.GatewaySpecAddress
		want  string
	}{
		{"none", nil, ""},
		{"any address", []gwv1.GatewaySpecAddress{{Type: &ip}}, ""},
		{"one", []gwv1.GatewaySpecAddress{{Type: &ip, Value: "10.0.1.254"}, {Type: &ip}}, "10.0.1.254"},
		{"both families", []gwv1.GatewaySpecAddress{{Value: "10.0.1.254"}, {Type: &ip, Value: "fd00::1"}}, "10.0.1.254,fd00::1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := &provisioner{image: "img:dev", serviceType: corev1.ServiceTypeLoadBalancer, replicas: 1}
			gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", UID: "u"}, Spec: gwv1.GatewaySpec{Addresses: c.addrs}}
			got, ok := p.service(gw, []int32{80}).Annotations[translate.LoadBalancerIPsAnnotation]
			if got != c.want || ok != (c.want != "") {
				t.Errorf("annotation %s: got %q (set %v); want %q", translate.LoadBalancerIPsAnnotation, got, ok, c.want)
			}
		})
	}
}

// TestGatewayAddresses: what a Gateway whose spec.addresses names addresses advertises, and
// the Programmed reason when it cannot: the requested address once assigned, AddressNotAssigned
// while the load balancer may still answer, AddressNotUsable when it did not in time, gave
// other addresses, or cannot be asked (two IPv4 addresses, not a LoadBalancer Service).
func TestGatewayAddresses(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	const wait = 20 * time.Second
	ip := gwv1.IPAddressType
	svc := func(typ corev1.ServiceType, ingress ...string) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "gatecheck-gw", Namespace: "infra", CreationTimestamp: metav1.NewTime(since.Add(-time.Hour))},
			Spec:       corev1.ServiceSpec{Type: typ, ClusterIP: "10.0.0.17"},
		}
		for _, in := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: in})
		}
		return s
	}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	lb := corev1.ServiceTypeLoadBalancer
	cases := []struct {
		name       string
		svc        *corev1.Service
		want       []netip.Addr
		after      time.Duration
		wantAddrs  []string
		wantReason gwv1.GatewayConditionReason
		wantMsg    string
		wantRetry  time.Duration
	}{
		{"assigned", svc(lb, "10.0.1.254"), addrs("10.0.1.254"), time.Second, []string{"10.0.1.254"}, "", "", 0},
		{"pending", svc(lb), addrs("10.0.1.254"), 5 * time.Second, nil, gwv1.GatewayReasonAddressNotAssigned, "waiting for the load balancer to assign 10.0.1.254", 15 * time.Second},
		{"not assigned in time", svc(lb), addrs("10.0.2.1"), wait, nil, gwv1.GatewayReasonAddressNotUsable, "has not assigned 10.0.2.1 to the proxy Service infra/gatecheck-gw in 20s", 0},
		{"no ClusterIP fallback for requested addresses", svc(lb), addrs("10.0.2.1"), time.Hour, nil, gwv1.GatewayReasonAddressNotUsable, "has not assigned 10.0.2.1", 0},
		{"previous assignment still there", svc(lb, "10.0.1.7"), addrs("10.0.1.254"), time.Second, nil, gwv1.GatewayReasonAddressNotAssigned, "waiting", 19 * time.Second},
		{"other address assigned", svc(lb, "10.0.1.7"), addrs("10.0.1.254"), wait, nil, gwv1.GatewayReasonAddressNotUsable, "gave the proxy Service infra/gatecheck-gw [10.0.1.7], not 10.0.1.254", 0},
		{"two IPv4 addresses", svc(lb), addrs("10.0.2.1", "10.0.1.254"), 0, nil, gwv1.GatewayReasonAddressNotUsable, "10.0.2.1 and 10.0.1.254 are of the same IP family", 0},
		{"one per family", svc(lb, "10.0.1.254", "fd00::1"), addrs("10.0.1.254", "fd00::1"), time.Second, []string{"10.0.1.254", "fd00::1"}, "", "", 0},
		{"not a LoadBalancer Service", svc(corev1.ServiceTypeClusterIP), addrs("10.0.1.254"), 0, nil, gwv1.GatewayReasonAddressNotUsable, "is of type ClusterIP", 0},
		{"any address: the load balancer's", svc(lb, "10.0.1.3"), nil, time.Second, []string{"10.0.1.3"}, "", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := gatewayAddresses(c.svc, c.want, since, since.Add(c.after), wait)
			var want []gwv1.GatewayStatusAddress
			for _, a := range c.wantAddrs {
				want = append(want, gwv1.GatewayStatusAddress{Type: &ip, Value: a})
			}
			if diff := cmp.Diff(want, got.addrs); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if got.reason != c.wantReason || !strings.Contains(got.msg, c.wantMsg) || got.retry != c.wantRetry {
				t.Errorf("got reason %q, message %q, retry %v; want reason %q, message containing %q, retry %v", got.reason, got.msg, got.retry, c.wantReason, c.wantMsg, c.wantRetry)
			}
		})
	}
}

// TestAddressesRequestedSince: the load balancer's time to answer counts from when the Service
// began asking for the current addresses, not from an earlier request.
func TestAddressesRequestedSince(t *testing.T) {
	t.Parallel()
	p := &provisioner{}
	t0 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	a, b := []netip.Addr{netip.MustParseAddr("10.0.2.1")}, []netip.Addr{netip.MustParseAddr("10.0.1.254")}
	steps := []struct {
		at   time.Duration
		ips  []netip.Addr
		want time.Duration
	}{
		{0, a, 0}, {10 * time.Second, a, 0}, {15 * time.Second, b, 15 * time.Second}, {30 * time.Second, b, 15 * time.Second},
		{40 * time.Second, nil, 40 * time.Second}, {50 * time.Second, b, 50 * time.Second},
	}
	for i, s := range steps {
		if got := p.addressesRequestedSince("u", s.ips, t0.Add(s.at)); !got.Equal(t0.Add(s.want)) {
			t.Errorf("step %d (%v at +%v): got +%v; want +%v", i, s.ips, s.at, got.Sub(t0), s.want)
		}
	}
}

// TestStaticAddressesThroughReconcile: a reconcile asks the proxy Service for spec.addresses
// and reports on the Gateway what became of them; here the controller makes ClusterIP
// Services, which no load balancer gives an address, so the Gateway is Accepted but not
// Programmed (AddressNotUsable), with no status address (not the ClusterIP).
func TestStaticAddressesThroughReconcile(t *testing.T) {
	t.Parallel()
	c, r, gw := ownershipFixture(t, nil)
	ctx := context.Background()
	var g gwv1.Gateway
	if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
		t.Fatal(err)
	}
	g.Spec.Addresses = []gwv1.GatewaySpecAddress{{Value: "10.0.1.254"}}
	if err := c.Update(ctx, &g); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r)
	var svc corev1.Service
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "gatecheck-gw"}, &svc); err != nil {
		t.Fatal(err)
	}
	if got := svc.Annotations[translate.LoadBalancerIPsAnnotation]; got != "10.0.1.254" {
		t.Errorf("Service annotation %s: got %q; want 10.0.1.254", translate.LoadBalancerIPsAnnotation, got)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
		t.Fatal(err)
	}
	if a := meta.FindStatusCondition(g.Status.Conditions, "Accepted"); a == nil || a.Status != metav1.ConditionTrue {
		t.Errorf("Accepted: got %+v; want True", a)
	}
	p := meta.FindStatusCondition(g.Status.Conditions, "Programmed")
	if p == nil || p.Status != metav1.ConditionFalse || p.Reason != string(gwv1.GatewayReasonAddressNotUsable) || !strings.Contains(p.Message, "is of type ClusterIP") {
		t.Errorf("Programmed: got %+v; want False, AddressNotUsable, naming the Service type", p)
	}
	if len(g.Status.Addresses) != 0 {
		t.Errorf("status.addresses: got %v; want none", g.Status.Addresses)
	}
}
