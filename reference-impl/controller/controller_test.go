package controller

import (
	"context"
	"log/slog"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

func TestReconcileProvisionsAndProgrammes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", Generation: 1, UID: "uid-1"},
		Spec:       gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}).
		WithObjects(
			&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gc", Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: DefaultControllerName}},
			gw,
			&gwv1.HTTPRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "infra", Generation: 1},
				Spec:       gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}},
			},
		).Build()
	r := NewReconciler(c, c, Options{ProxyImage: "img:dev", DeliveryURL: "http://10.0.0.1:18000", Logger: slog.New(slog.DiscardHandler)})

	reconcileAll := func() error {
		_, err := r.Reconcile(ctx, reconcile.Request{})
		r.writes.drain(ctx)
		return err
	}
	if err := reconcileAll(); err != nil {
		t.Fatalf("first reconcile: %v", err)
	}
	var dep appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "gatecheck-gw"}, &dep); err != nil {
		t.Fatalf("proxy Deployment: %v", err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Args; got[1] != "http://10.0.0.1:18000" || got[3] != "infra/gw" {
		t.Errorf("proxy args: got %v; want the delivery URL and infra/gw", got)
	}
	if len(dep.OwnerReferences) != 1 || dep.OwnerReferences[0].UID != "uid-1" {
		t.Errorf("Deployment owner: got %v; want the Gateway", dep.OwnerReferences)
	}
	var svc corev1.Service
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "gatecheck-gw"}, &svc); err != nil {
		t.Fatalf("proxy Service: %v", err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("Service ports: got %v; want [80]", svc.Spec.Ports)
	}
	programmed := func() *metav1.Condition {
		var g gwv1.Gateway
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(g.Status.Conditions, "Programmed")
	}
	if p := programmed(); p == nil || p.Status != metav1.ConditionFalse {
		t.Fatalf("before any proxy: Programmed %v; want False", p)
	}

	// The API server allocates a ClusterIP; a proxy pod turns ready and acks the version.
	svc.Spec.ClusterIP = "10.96.0.20"
	if err := c.Update(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gatecheck-gw-abc", Namespace: "infra", Labels: dep.Spec.Template.Labels},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "infra", Name: "gw"}
	var version int64
	for _, k := range r.delivery.Gateways() {
		if k == key {
			r.delivery.mu.Lock()
			version = r.delivery.gateways[k].snap.Version
			r.delivery.mu.Unlock()
		}
	}
	if version == 0 {
		t.Fatalf("no snapshot published for %s", key)
	}
	r.delivery.mu.Lock()
	r.delivery.gateways[key].acks[pod.Name] = ir.Ack{Gateway: ir.NamespacedName{Namespace: "infra", Name: "gw"}, Proxy: pod.Name, Version: version}
	r.delivery.mu.Unlock()

	if err := reconcileAll(); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	if p := programmed(); p == nil || p.Status != metav1.ConditionTrue {
		t.Fatalf("after ack: Programmed %v; want True", p)
	}
	var g gwv1.Gateway
	_ = c.Get(ctx, key, &g)
	if len(g.Status.Addresses) != 1 || g.Status.Addresses[0].Value != "10.96.0.20" {
		t.Errorf("addresses: got %v; want 10.96.0.20", g.Status.Addresses)
	}
	var route gwv1.HTTPRoute
	_ = c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "r"}, &route)
	if len(route.Status.Parents) != 1 || !meta.IsStatusConditionTrue(route.Status.Parents[0].Conditions, "Accepted") {
		t.Errorf("route parents: got %+v; want one Accepted parent", route.Status.Parents)
	}

	// A reconcile with nothing changed writes nothing.
	rv := g.ResourceVersion
	if err := reconcileAll(); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(ctx, key, &g)
	if g.ResourceVersion != rv {
		t.Errorf("no-op reconcile: resourceVersion %s -> %s; want unchanged", rv, g.ResourceVersion)
	}
}
