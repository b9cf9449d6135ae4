package controller

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

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
	"github.com/gatecheck/gatecheck/reference-impl/status"
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
	r := NewReconciler(c, c, Options{ProxyImage: "img:dev", ServiceType: corev1.ServiceTypeClusterIP, DeliveryURL: "http://10.0.0.1:18000", Logger: slog.New(slog.DiscardHandler)})

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
	arg := func(name string) string {
		args := dep.Spec.Template.Spec.Containers[0].Args
		for i := range len(args) - 1 {
			if args[i] == name {
				return args[i+1]
			}
		}
		return ""
	}
	if arg("--controller") != "http://10.0.0.1:18000" || arg("--gateway") != "infra/gw" || arg("--tls-dir") != deliveryMount {
		t.Errorf("proxy args: got %v; want the delivery URL, infra/gw and --tls-dir %s", dep.Spec.Template.Spec.Containers[0].Args, deliveryMount)
	}
	// The proxies' delivery certificate: a Secret the Gateway owns, naming the Gateway, mounted.
	var cert corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "gatecheck-gw-delivery"}, &cert); err != nil {
		t.Fatalf("proxy certificate Secret: %v", err)
	}
	if !r.opts.CA.proxyCertCurrent(types.NamespacedName{Namespace: "infra", Name: "gw"}, cert.Data, time.Now()) {
		t.Errorf("proxy certificate Secret does not hold a current certificate for infra/gw signed by the controller's CA")
	}
	if len(cert.OwnerReferences) != 1 || cert.OwnerReferences[0].UID != "uid-1" {
		t.Errorf("certificate Secret owner: got %v; want the Gateway", cert.OwnerReferences)
	}
	if v := dep.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].Secret == nil || v[0].Secret.SecretName != cert.Name {
		t.Errorf("proxy volumes: got %+v; want the Secret %s", v, cert.Name)
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

// TestRouteStatusesSkipsUnchangedRoutes: a route whose resourceVersion and desired parents
// (the same slice, as incremental.Translator returns it) were already found up to date is not compared
// again; a new resourceVersion or a new desired status is, and a stale one is written.
func TestRouteStatusesSkipsUnchangedRoutes(t *testing.T) {
	t.Parallel()
	const ctrlName = "gatecheck.dev/reference"
	want := []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: ctrlName,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 1}}}}
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r", ResourceVersion: "10"},
		Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: slices.Clone(want)}}}
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	compared := 0
	parents := func(o *gwv1.HTTPRoute) []gwv1.RouteParentStatus { compared++; return o.Status.Parents }
	write := func(context.Context, types.NamespacedName, string, []gwv1.RouteParentStatus) (bool, error) {
		return true, nil
	}
	sw := &status.Writer{}
	pass := func(w []gwv1.RouteParentStatus) (cmp, jobs int) {
		q := newWriteQueue(slog.New(slog.DiscardHandler))
		compared = 0
		sw.BeginPass()
		routeStatuses(q, sw, nil, "HTTPRoute", []*gwv1.HTTPRoute{route}, map[types.NamespacedName][]gwv1.RouteParentStatus{key: w}, ctrlName, parents, write)
		sw.EndPass()
		return compared, len(q.pending)
	}
	for i, step := range []struct {
		name          string
		change        func() []gwv1.RouteParentStatus
		compared, job bool
	}{
		{"first look", func() []gwv1.RouteParentStatus { return want }, true, false},
		{"nothing changed", func() []gwv1.RouteParentStatus { return want }, false, false},
		{"new resourceVersion", func() []gwv1.RouteParentStatus { route.ResourceVersion = "11"; return want }, true, false},
		{"unchanged again", func() []gwv1.RouteParentStatus { return want }, false, false},
		{"new desired status", func() []gwv1.RouteParentStatus {
			w := slices.Clone(want)
			w[0].Conditions = []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 2}}
			return w
		}, true, true},
	} {
		cmp, jobs := pass(step.change())
		if (cmp > 0) != step.compared || (jobs > 0) != step.job {
			t.Errorf("step %d %s: compared %d times, %d writes queued; want compared=%v write=%v", i, step.name, cmp, jobs, step.compared, step.job)
		}
	}
	// A stale route in a namespace being deleted is left alone.
	q := newWriteQueue(slog.New(slog.DiscardHandler))
	stale := []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "other"}, ControllerName: ctrlName}}
	routeStatuses(q, sw, map[string]bool{"ns": true}, "HTTPRoute", []*gwv1.HTTPRoute{route}, map[types.NamespacedName][]gwv1.RouteParentStatus{key: stale}, ctrlName, parents, write)
	if len(q.pending) != 0 {
		t.Errorf("%d writes queued for a route in a terminating namespace; want 0", len(q.pending))
	}
	// A route that is gone is forgotten: after a pass without it, it is compared again.
	sw.BeginPass()
	sw.EndPass()
	if cmp, _ := pass(want); cmp == 0 {
		t.Errorf("after a pass without the route: not compared; want it forgotten and compared again")
	}
}

// TestReconcileTakesRouteChangesIncrementally: after route events only, a reconcile
// translates just the changed routes (one route translated, none kept), publishes a snapshot with the
// new route in it and writes its status; a deletion takes it out again; any other event makes
// the next reconcile translate everything.
func TestReconcileTakesRouteChangesIncrementally(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	route := func(name string) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "infra", Generation: 1, UID: types.UID("uid-" + name)},
			Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
				Hostnames: []gwv1.Hostname{gwv1.Hostname(name + ".example")}},
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}).
		WithObjects(
			&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gc", Generation: 1, UID: "uid-gc"}, Spec: gwv1.GatewayClassSpec{ControllerName: DefaultControllerName}},
			&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", Generation: 1, UID: "uid-gw"},
				Spec: gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra", UID: "uid-ns"}},
			route("a"),
		).Build()
	r := NewReconciler(c, c, Options{ProxyImage: "img:dev", ServiceType: corev1.ServiceTypeClusterIP, DeliveryURL: "http://10.0.0.1:18000", Logger: slog.New(slog.DiscardHandler)})
	reconcile1 := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconcile.Request{}); err != nil {
			t.Fatal(err)
		}
		r.writes.drain(ctx)
	}
	hosts := func() []string {
		r.delivery.mu.Lock()
		defer r.delivery.mu.Unlock()
		var out []string
		for _, l := range r.delivery.gateways[types.NamespacedName{Namespace: "infra", Name: "gw"}].snap.Listeners {
			for _, rt := range l.HTTPRoutes {
				out = append(out, rt.Hostnames...)
			}
		}
		return out
	}
	reconcile1() // the first one is full; it creates the proxy Service (a change of its own)
	r.dirty.everything()
	reconcile1()
	if got := hosts(); !slices.Equal(got, []string{"a.example"}) {
		t.Fatalf("published hosts %v; want [a.example]", got)
	}

	b := route("b")
	if err := c.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	r.dirty.route("HTTPRoute", b)
	reconcile1()
	if r.translator.Hits != 0 || r.translator.Misses != 1 {
		t.Errorf("after a route event: %d routes kept, %d translated; want 0 and 1 (only the new route translated)", r.translator.Hits, r.translator.Misses)
	}
	if got := hosts(); !slices.Equal(got, []string{"a.example", "b.example"}) {
		t.Errorf("published hosts %v; want [a.example b.example]", got)
	}
	var got gwv1.HTTPRoute
	_ = c.Get(ctx, client.ObjectKeyFromObject(b), &got)
	if len(got.Status.Parents) != 1 || !meta.IsStatusConditionTrue(got.Status.Parents[0].Conditions, "Accepted") {
		t.Errorf("route b parents %+v; want one Accepted parent", got.Status.Parents)
	}

	if err := c.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	r.dirty.route("HTTPRoute", b)
	reconcile1()
	if got := hosts(); !slices.Equal(got, []string{"a.example"}) {
		t.Errorf("after deleting b: published hosts %v; want [a.example]", got)
	}

	r.dirty.everything()
	reconcile1()
	if r.translator.Hits != 1 {
		t.Errorf("after a non-route event: %d routes kept; want 1 (everything translated, a kept)", r.translator.Hits)
	}
}
