package status

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func newClient(t *testing.T, funcs interceptor.Funcs, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := gwv1.Install(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&gwv1.Gateway{}, &gwv1.HTTPRoute{}).WithObjects(objs...).WithInterceptorFuncs(funcs).Build()
}

func accepted(ok bool, gen int64) metav1.Condition {
	s := metav1.ConditionTrue
	if !ok {
		s = metav1.ConditionFalse
	}
	return metav1.Condition{Type: "Accepted", Status: s, Reason: "Accepted", ObservedGeneration: gen}
}

func TestGatewaySkipsNoOpAndKeepsTransitionTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	writes := 0
	c := newClient(t, interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		writes++
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}}, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns"}})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &Writer{Client: c, Now: func() time.Time { return clock }}
	key := types.NamespacedName{Namespace: "ns", Name: "gw"}
	want := gwv1.GatewayStatus{Conditions: []metav1.Condition{accepted(true, 1)}}

	for i, tc := range []struct {
		name      string
		status    gwv1.GatewayStatus
		wantWrite bool
	}{
		{"first write", want, true},
		{"same status", want, false},
		{"new generation", gwv1.GatewayStatus{Conditions: []metav1.Condition{accepted(true, 2)}}, true},
	} {
		clock = clock.Add(time.Minute)
		wrote, err := w.Gateway(ctx, key, tc.status)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if wrote != tc.wantWrite {
			t.Errorf("step %d %s: wrote %v; want %v", i, tc.name, wrote, tc.wantWrite)
		}
	}
	if writes != 2 {
		t.Errorf("writes: got %d; want 2", writes)
	}
	var gw gwv1.Gateway
	_ = c.Get(ctx, key, &gw)
	if got, want := gw.Status.Conditions[0].LastTransitionTime.Time, time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("lastTransitionTime: got %v; want %v (status unchanged since the first write)", got, want)
	}
}

func TestRouteRetriesOnConflictAndKeepsOtherControllers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "theirs"}, ControllerName: "example.com/other", Conditions: []metav1.Condition{accepted(true, 1)}}
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}, Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{other}}}}
	conflicts := 1
	c := newClient(t, interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		if conflicts > 0 {
			conflicts--
			return apierrors.NewConflict(schema.GroupResource{Group: gwv1.GroupName, Resource: "httproutes"}, obj.GetName(), nil)
		}
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}}, route)
	w := &Writer{Client: c}
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	mine := []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "gatecheck.dev/reference", Conditions: []metav1.Condition{accepted(true, 1)}}}
	wrote, err := w.HTTPRoute(ctx, key, "gatecheck.dev/reference", mine)
	if err != nil || !wrote {
		t.Fatalf("HTTPRoute: wrote %v err %v; want a write after one conflict", wrote, err)
	}
	var got gwv1.HTTPRoute
	_ = c.Get(ctx, key, &got)
	if len(got.Status.Parents) != 2 || got.Status.Parents[0].ControllerName != "example.com/other" {
		t.Fatalf("parents: got %+v; want the other controller's entry kept plus ours", got.Status.Parents)
	}
	// Clearing ours leaves theirs.
	if _, err := w.HTTPRoute(ctx, key, "gatecheck.dev/reference", nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(ctx, key, &got)
	if len(got.Status.Parents) != 1 || got.Status.Parents[0].ControllerName != "example.com/other" {
		t.Errorf("after clearing: got %+v; want only the other controller's entry", got.Status.Parents)
	}
}

// TestRouteClearingLastParentWritesEmptyList: status.parents is required, so removing our only
// entry must send [] (the API server answers null with 422 Invalid, retried forever).
func TestRouteClearingLastParentWritesEmptyList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mine := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "gatecheck.dev/reference", Conditions: []metav1.Condition{accepted(true, 1)}}
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}, Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{mine}}}}
	var sent []gwv1.RouteParentStatus
	c := newClient(t, interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		sent = obj.(*gwv1.HTTPRoute).Status.Parents
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}}, route)
	w := &Writer{Client: c}
	wrote, err := w.HTTPRoute(ctx, types.NamespacedName{Namespace: "ns", Name: "r"}, "gatecheck.dev/reference", nil)
	if err != nil || !wrote {
		t.Fatalf("HTTPRoute: wrote %v err %v; want a write", wrote, err)
	}
	if sent == nil || len(sent) != 0 {
		t.Errorf("parents sent: got %#v; want an empty, non-nil list (encodes as [], not null)", sent)
	}
}

// staleReader serves a copy of one object as it was, like a cache that has not seen the
// writes since.
type staleReader struct{ obj client.Object }

func (s staleReader) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	reflectCopy(s.obj, obj)
	return nil
}

func (s staleReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

func reflectCopy(from, to client.Object) {
	*(to.(*gwv1.HTTPRoute)) = *(from.(*gwv1.HTTPRoute).DeepCopy())
}

// TestRouteWriteStartsFromItsOwnWriteWhenTheCacheIsStale: the second status change of a route
// whose first write the cache has not seen yet costs one write and no conflict, and repeating
// the status just written costs nothing.
func TestRouteWriteStartsFromItsOwnWriteWhenTheCacheIsStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}}
	var updates, conflicts int
	c := newClient(t, interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		updates++
		err := c.SubResource(sub).Update(ctx, obj, opts...)
		if apierrors.IsConflict(err) {
			conflicts++
		}
		return err
	}}, route)
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	var initial gwv1.HTTPRoute
	if err := c.Get(ctx, key, &initial); err != nil {
		t.Fatal(err)
	}
	w := &Writer{Client: c, Reader: staleReader{&initial}, APIReader: c}
	parents := func(gen int64) []gwv1.RouteParentStatus {
		return []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "gatecheck.dev/reference", Conditions: []metav1.Condition{accepted(true, gen)}}}
	}
	for i, step := range []struct {
		gen       int64
		wantWrite bool
	}{{1, true}, {2, true}, {2, false}} {
		wrote, err := w.HTTPRoute(ctx, key, "gatecheck.dev/reference", parents(step.gen))
		if err != nil || wrote != step.wantWrite {
			t.Fatalf("step %d: wrote %v err %v; want wrote %v", i, wrote, err, step.wantWrite)
		}
	}
	if updates != 2 || conflicts != 0 {
		t.Errorf("%d updates, %d conflicts; want 2 and 0", updates, conflicts)
	}
	var got gwv1.HTTPRoute
	_ = c.Get(ctx, key, &got)
	if g := got.Status.Parents[0].Conditions[0].ObservedGeneration; g != 2 {
		t.Errorf("observedGeneration %d; want 2", g)
	}
	// Once the cache has moved on, it is read again.
	w.Reader = c
	if wrote, err := w.HTTPRoute(ctx, key, "gatecheck.dev/reference", parents(3)); err != nil || !wrote {
		t.Fatalf("after the cache caught up: wrote %v err %v", wrote, err)
	}
}
