//go:build envtest

package controller

// Runs the controller against a real kube-apiserver (no kubelet) so the statuses it writes are
// checked by the Gateway API CRDs' own validation:
//
//	KUBEBUILDER_ASSETS=/dir/with/kube-apiserver+etcd go test -tags envtest ./reference-impl/controller -run TestEnvtest -v

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestEnvtest(t *testing.T) {
	crds := filepath.Join(os.Getenv("HOME"), "go/pkg/mod/sigs.k8s.io/gateway-api@v1.6.3/config/crd/experimental")
	env := &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	defer env.Stop()
	scheme, _ := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		err := Run(ctx, cfg, Options{ProxyImage: "img:dev", DeliveryURL: "https://10.0.0.1:18000", DeliveryAddr: "127.0.0.1:0", HealthAddr: "0", Logger: log,
			CASecret: types.NamespacedName{Namespace: "default", Name: DefaultCASecretName}})
		if err != nil && ctx.Err() == nil {
			t.Errorf("controller: %v", err)
		}
	}()

	yamlObjs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gc"}, Spec: gwv1.GatewayClassSpec{ControllerName: DefaultControllerName}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
			{Name: "udp", Port: 53, Protocol: gwv1.UDPProtocolType},
			{Name: "badkinds", Port: 8080, Protocol: gwv1.HTTPProtocolType, AllowedRoutes: &gwv1.AllowedRoutes{Kinds: []gwv1.RouteGroupKind{{Kind: "InvalidRoute"}}}},
		}}},
		&gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "infra"}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw", SectionName: ptrTo[gwv1.SectionName]("http")}, {Name: "gw", SectionName: ptrTo[gwv1.SectionName]("nope")}}},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "missing", Port: ptrTo[gwv1.PortNumber](80)}}}}}},
		}},
	}
	for _, o := range yamlObjs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var gc gwv1.GatewayClass
		var gw gwv1.Gateway
		var r gwv1.HTTPRoute
		_ = c.Get(ctx, types.NamespacedName{Name: "gc"}, &gc)
		_ = c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "gw"}, &gw)
		_ = c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "r"}, &r)
		if meta.IsStatusConditionTrue(gc.Status.Conditions, "Accepted") && len(gc.Status.SupportedFeatures) > 0 &&
			len(gw.Status.Listeners) == 3 && len(r.Status.Parents) == 2 {
			t.Logf("gatewayclass features: %d; gateway conditions %+v", len(gc.Status.SupportedFeatures), gw.Status.Conditions)
			for _, l := range gw.Status.Listeners {
				t.Logf("listener %s kinds=%v attached=%d conds=%v", l.Name, l.SupportedKinds, l.AttachedRoutes, l.Conditions)
			}
			for _, p := range r.Status.Parents {
				t.Logf("route parent %v: %v", p.ParentRef.SectionName, p.Conditions)
			}
			envtestOwnership(t, ctx, c)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses not written within 30s: class %+v\ngateway %+v\nroute %+v", gc.Status, gw.Status, r.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ptrTo[T any](v T) *T { return &v }

// envtestOwnership: the delivery CA and the Gateway's certificate Secret exist; a Deployment
// named like a second Gateway's proxies but not its own (unlabelled, so not even in the
// controller's cache) is left untouched and that Gateway reports the clash.
func envtestOwnership(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	var ca, cert corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: DefaultCASecretName}, &ca); err != nil {
		t.Errorf("delivery CA Secret: %v", err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "gatecheck-gw-delivery"}, &cert); err != nil {
		t.Errorf("proxy certificate Secret: %v", err)
	} else if len(cert.OwnerReferences) != 1 || cert.OwnerReferences[0].Name != "gw" {
		t.Errorf("proxy certificate Secret owners: %v; want Gateway gw", cert.OwnerReferences)
	}
	theirs := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "gatecheck-clash"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "theirs"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "theirs:1"}}}}}}
	if err := c.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "clash", Namespace: "infra"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gc",
		Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	if err := c.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var g gwv1.Gateway
		_ = c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "clash"}, &g)
		if p := meta.FindStatusCondition(g.Status.Conditions, "Programmed"); p != nil && p.Reason == NameConflict {
			t.Logf("clash: Programmed=%s %s: %s", p.Status, p.Reason, p.Message)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s condition within 30s: %+v", NameConflict, g.Status.Conditions)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var now appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKeyFromObject(theirs), &now); err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != theirs.ResourceVersion || now.Spec.Template.Spec.Containers[0].Image != "theirs:1" || len(now.OwnerReferences) != 0 {
		t.Errorf("their Deployment changed: resourceVersion %s -> %s, image %s, owners %v", theirs.ResourceVersion, now.ResourceVersion, now.Spec.Template.Spec.Containers[0].Image, now.OwnerReferences)
	}
}
