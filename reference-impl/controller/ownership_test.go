package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// noSecretListing fails the test's client on any List or Watch of Secrets or ConfigMaps: the
// controller may only GET the Secrets listeners reference and the ConfigMaps Gateways name as
// CA certificates. gets counts the Secret GETs by name, and the ConfigMap GETs by
// "configmap:" and name.
func noSecretListing(gets map[string]int) interceptor.Funcs {
	return interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*corev1.SecretList); ok {
				return errors.New("the controller listed Secrets")
			}
			if _, ok := list.(*corev1.ConfigMapList); ok {
				return errors.New("the controller listed ConfigMaps")
			}
			return c.List(ctx, list, opts...)
		},
		Watch: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) (watch.Interface, error) {
			if _, ok := list.(*corev1.SecretList); ok {
				return nil, errors.New("the controller watched Secrets")
			}
			if _, ok := list.(*corev1.ConfigMapList); ok {
				return nil, errors.New("the controller watched ConfigMaps")
			}
			return c.Watch(ctx, list, opts...)
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*corev1.Secret); ok && gets != nil {
				gets[key.String()]++
			}
			if _, ok := obj.(*corev1.ConfigMap); ok && gets != nil {
				gets["configmap:"+key.String()]++
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}
}

func ownershipFixture(t *testing.T, gets map[string]int, objs ...client.Object) (client.Client, *Reconciler, *gwv1.Gateway) {
	t.Helper()
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", Generation: 1, UID: "uid-1"},
		Spec:       gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}},
	}
	objs = append(objs, gw, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gc", Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: DefaultControllerName}})
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&gwv1.Gateway{}, &gwv1.GatewayClass{}).
		WithInterceptorFuncs(noSecretListing(gets)).Build()
	r := NewReconciler(c, c, Options{ProxyImage: "img:dev", ServiceType: corev1.ServiceTypeClusterIP, DeliveryURL: "https://10.0.0.1:18000", Logger: slog.New(slog.DiscardHandler)})
	return c, r, gw
}

func reconcileOnce(t *testing.T, r *Reconciler) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, reconcile.Request{}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	r.writes.drain(ctx)
}

// TestProvisionerLeavesObjectsItDoesNotOwn: a Deployment, Service or Secret with the name of
// the Gateway's proxy objects that the Gateway does not own is neither changed nor deleted,
// and the Gateway says why it is not Programmed.
func TestProvisionerLeavesObjectsItDoesNotOwn(t *testing.T) {
	t.Parallel()
	meta0 := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "infra", Labels: map[string]string{"app": "theirs"}}
	}
	for _, tc := range []struct {
		name string
		obj  client.Object
	}{
		{"Deployment", &appsv1.Deployment{ObjectMeta: meta0("gatecheck-gw"), Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}}}}},
		{"Service", &corev1.Service{ObjectMeta: meta0("gatecheck-gw"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 5432}}}}},
		{"Secret", &corev1.Secret{ObjectMeta: meta0("gatecheck-gw-delivery"), Data: map[string][]byte{"password": []byte("theirs")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, r, gw := ownershipFixture(t, nil, tc.obj)
			ctx := context.Background()
			key := client.ObjectKeyFromObject(tc.obj)
			before := tc.obj.DeepCopyObject().(client.Object)
			if err := c.Get(ctx, key, before); err != nil {
				t.Fatal(err)
			}
			reconcileOnce(t, r)
			after := tc.obj.DeepCopyObject().(client.Object)
			if err := c.Get(ctx, key, after); err != nil {
				t.Fatalf("their %s: %v; want it kept", tc.name, err)
			}
			if after.GetResourceVersion() != before.GetResourceVersion() {
				t.Errorf("their %s: resourceVersion %s -> %s; want untouched", tc.name, before.GetResourceVersion(), after.GetResourceVersion())
			}
			var g gwv1.Gateway
			if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
				t.Fatal(err)
			}
			p := meta.FindStatusCondition(g.Status.Conditions, "Programmed")
			wantMsg := fmt.Sprintf("%s infra/%s already exists and is not owned by this Gateway", tc.name, key.Name)
			if p == nil || p.Status != metav1.ConditionFalse || p.Reason != NameConflict || !strings.Contains(p.Message, wantMsg) {
				t.Errorf("Programmed: got %+v; want False, reason %s, message containing %q", p, NameConflict, wantMsg)
			}

			// The Gateway goes invalid (no listener left): the proxies are removed, theirs is not.
			g.Spec.Listeners[0].Protocol = "SCTP"
			if err := c.Update(ctx, &g); err != nil {
				t.Fatal(err)
			}
			reconcileOnce(t, r)
			if err := c.Get(ctx, key, after); err != nil {
				t.Errorf("their %s after the Gateway's proxies were removed: %v; want it kept", tc.name, err)
			}
		})
	}
}

// TestProvisionerUpdatesAndRemovesItsOwn: objects the Gateway owns are updated and removed.
func TestProvisionerUpdatesAndRemovesItsOwn(t *testing.T) {
	t.Parallel()
	c, r, gw := ownershipFixture(t, nil)
	ctx := context.Background()
	reconcileOnce(t, r)
	names := map[client.Object]string{&appsv1.Deployment{}: "gatecheck-gw", &corev1.Service{}: "gatecheck-gw", &corev1.Secret{}: "gatecheck-gw-delivery"}
	for o, name := range names {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: name}, o); err != nil {
			t.Fatalf("%T %s: %v", o, name, err)
		}
		if !ownedBy(o, gw) {
			t.Errorf("%T %s: owner references %v; want the Gateway", o, name, o.GetOwnerReferences())
		}
	}
	var g gwv1.Gateway
	_ = c.Get(ctx, client.ObjectKeyFromObject(gw), &g)
	g.Spec.Listeners[0].Protocol = "SCTP"
	if err := c.Update(ctx, &g); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r)
	for o, name := range names {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: name}, o); err == nil {
			t.Errorf("%T %s still exists after the Gateway lost its listeners; want deleted", o, name)
		}
	}
}

// TestSecretsReadOnlyAsReferenced: reconciles never list or watch Secrets (the interceptor
// fails them) and GET only the Secrets an HTTPS listener of our class references and may
// read; a cross-namespace reference without a ReferenceGrant is not read at all.
func TestSecretsReadOnlyAsReferenced(t *testing.T) {
	t.Parallel()
	gets := map[string]int{}
	other := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "infra", Generation: 1, UID: "uid-2"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "someone-elses", Listeners: []gwv1.Listener{{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType,
			TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "foreign-cert"}}}}}},
	}
	c, r, gw := ownershipFixture(t, gets, other,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "infra"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "foreign-cert", Namespace: "infra"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cross", Namespace: "certs"}})
	ctx := context.Background()
	var g gwv1.Gateway
	_ = c.Get(ctx, client.ObjectKeyFromObject(gw), &g)
	certsNS := gwv1.Namespace("certs")
	g.Spec.Listeners = append(g.Spec.Listeners,
		gwv1.Listener{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "mine"}}}},
		gwv1.Listener{Name: "https-cross", Port: 8443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "cross", Namespace: &certsNS}}}})
	if err := c.Update(ctx, &g); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r)
	reconcileOnce(t, r)
	if gets["infra/mine"] != 1 {
		t.Errorf("GETs of the referenced Secret infra/mine over two reconciles: %d; want 1 (then polled)", gets["infra/mine"])
	}
	for _, k := range []string{"infra/unrelated", "infra/foreign-cert", "certs/cross"} {
		if gets[k] != 0 {
			t.Errorf("GETs of %s: %d; want 0 (not referenced by a listener of ours, or not granted)", k, gets[k])
		}
	}
	// The Secret appears: the poll notices it and a full reconcile follows.
	if changed, err := r.secrets.poll(ctx); err != nil || changed {
		t.Fatalf("poll before any change: changed=%v err=%v; want false, nil", changed, err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "infra"}}); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.secrets.poll(ctx); err != nil || !changed {
		t.Errorf("poll after the Secret was created: changed=%v err=%v; want true, nil", changed, err)
	}
}

// TestConfigMapsReadOnlyAsReferenced: reconciles never list or watch ConfigMaps (the
// interceptor fails them) and GET only the ConfigMaps our Gateway's frontend validation names
// as CA certificates and may read; a cross-namespace reference without a ReferenceGrant, a
// reference of another kind and another class's Gateway are not read at all.
func TestConfigMapsReadOnlyAsReferenced(t *testing.T) {
	t.Parallel()
	gets := map[string]int{}
	caRef := func(ns, name, kind string) gwv1.ObjectReference {
		r := gwv1.ObjectReference{Group: "", Kind: gwv1.Kind(kind), Name: gwv1.ObjectName(name)}
		if ns != "" {
			n := gwv1.Namespace(ns)
			r.Namespace = &n
		}
		return r
	}
	frontend := func(def []gwv1.ObjectReference, port gwv1.PortNumber, perPort []gwv1.ObjectReference) *gwv1.GatewayTLSConfig {
		f := &gwv1.FrontendTLSConfig{Default: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{CACertificateRefs: def}}}
		if perPort != nil {
			f.PerPort = []gwv1.TLSPortConfig{{Port: port, TLS: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{CACertificateRefs: perPort}}}}
		}
		return &gwv1.GatewayTLSConfig{Frontend: f}
	}
	other := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "infra", Generation: 1, UID: "uid-2"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "someone-elses", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
			TLS: frontend([]gwv1.ObjectReference{caRef("", "foreign-ca", "ConfigMap")}, 0, nil)},
	}
	c, r, gw := ownershipFixture(t, gets, other,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "infra"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "foreign-ca", Namespace: "infra"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cross", Namespace: "certs"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "per-port", Namespace: "infra"}, Data: map[string]string{"ca.crt": "x"}})
	ctx := context.Background()
	var g gwv1.Gateway
	_ = c.Get(ctx, client.ObjectKeyFromObject(gw), &g)
	g.Spec.TLS = frontend([]gwv1.ObjectReference{caRef("", "mine", "ConfigMap"), caRef("certs", "cross", "ConfigMap"), caRef("", "unrelated", "Secret")},
		8443, []gwv1.ObjectReference{caRef("", "per-port", "ConfigMap")})
	if err := c.Update(ctx, &g); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r)
	reconcileOnce(t, r)
	for _, k := range []string{"infra/mine", "infra/per-port"} {
		if gets["configmap:"+k] != 1 {
			t.Errorf("GETs of the referenced ConfigMap %s over two reconciles: %d; want 1 (then polled)", k, gets["configmap:"+k])
		}
	}
	for _, k := range []string{"infra/unrelated", "infra/foreign-ca", "certs/cross"} {
		if gets["configmap:"+k] != 0 {
			t.Errorf("GETs of ConfigMap %s: %d; want 0 (not referenced by a Gateway of ours as a ConfigMap, or not granted)", k, gets["configmap:"+k])
		}
	}
	// The missing ConfigMap appears: the poll notices it.
	if changed, err := r.configMaps.poll(ctx); err != nil || changed {
		t.Fatalf("poll before any change: changed=%v err=%v; want false, nil", changed, err)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "infra"}}); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.configMaps.poll(ctx); err != nil || !changed {
		t.Errorf("poll after the ConfigMap was created: changed=%v err=%v; want true, nil", changed, err)
	}
	// A change to a ConfigMap already read is noticed too.
	var pp corev1.ConfigMap
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "per-port"}, &pp); err != nil {
		t.Fatal(err)
	}
	pp.Data["ca.crt"] = "y"
	if err := c.Update(ctx, &pp); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.configMaps.poll(ctx); err != nil || !changed {
		t.Errorf("poll after the ConfigMap changed: changed=%v err=%v; want true, nil", changed, err)
	}
}
