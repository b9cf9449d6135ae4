package controller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func selfSignedPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestReconcileBackendTLS: a reconcile reads the policy's CA ConfigMap and the Gateway's client
// certificate Secret (as referenced), publishes both in the snapshot, and writes the policy's
// status with the Gateway as ancestor, keeping another controller's entry.
func TestReconcileBackendTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSignedPEM(t)
	port := gwv1.PortNumber(443)
	section := gwv1.SectionName("btls")
	other := gwv1.PolicyAncestorStatus{AncestorRef: gwv1.ParentReference{Name: "elsewhere"}, ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}}
	policy := &gwv1.BackendTLSPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "infra", Generation: 3},
		Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "secure"}, SectionName: &section}},
			Validation: gwv1.BackendTLSPolicyValidation{CACertificateRefs: []gwv1.LocalObjectReference{{Kind: "ConfigMap", Name: "ca"}}, Hostname: "abc.example.com"},
		},
		Status: gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{other}},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}, &gwv1.BackendTLSPolicy{}).
		WithObjects(
			&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gc", Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: DefaultControllerName}},
			&gwv1.Gateway{
				ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", Generation: 1, UID: "uid-1"},
				Spec: gwv1.GatewaySpec{GatewayClassName: "gc", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
					TLS: &gwv1.GatewayTLSConfig{Backend: &gwv1.GatewayBackendTLS{ClientCertificateRef: &gwv1.SecretObjectReference{Name: "client"}}}},
			},
			&gwv1.HTTPRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "infra", Generation: 1},
				Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
					Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: &port}}}}}}},
			},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "secure", Namespace: "infra"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "btls", Port: 443}}}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: "infra"}, Data: map[string]string{"ca.crt": string(certPEM)}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "infra"}, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}},
			policy,
		).Build()
	r := NewReconciler(c, c, Options{ProxyImage: "img:dev", ServiceType: corev1.ServiceTypeClusterIP, DeliveryURL: "http://10.0.0.1:18000", Logger: slog.New(slog.DiscardHandler)})
	if _, err := r.Reconcile(ctx, reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	r.writes.drain(ctx)

	key := types.NamespacedName{Namespace: "infra", Name: "gw"}
	r.delivery.mu.Lock()
	snap := r.delivery.gateways[key].snap
	r.delivery.mu.Unlock()
	if snap.BackendClientCertificate == nil || string(snap.BackendClientCertificate.CertPEM) != string(certPEM) {
		t.Errorf("snapshot's backend client certificate: got %+v; want the Secret infra/client", snap.BackendClientCertificate)
	}
	b := snap.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0]
	if b.TLS == nil || b.TLS.ServerName != "abc.example.com" || string(b.TLS.CACertPEM) != string(certPEM) {
		t.Errorf("backend TLS: got %+v; want serverName abc.example.com and the ConfigMap's CA", b.TLS)
	}

	var got gwv1.BackendTLSPolicy
	if err := c.Get(ctx, types.NamespacedName{Namespace: "infra", Name: "p"}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Ancestors) != 2 || got.Status.Ancestors[0].ControllerName != "example.com/other" {
		t.Fatalf("ancestors: got %+v; want the other controller's entry kept and ours added", got.Status.Ancestors)
	}
	ours := got.Status.Ancestors[1]
	if ours.AncestorRef.Name != "gw" || string(ours.ControllerName) != DefaultControllerName {
		t.Fatalf("our ancestor: got %+v; want Gateway gw by %s", ours, DefaultControllerName)
	}
	for _, typ := range []string{"Accepted", "ResolvedRefs"} {
		var found bool
		for _, cnd := range ours.Conditions {
			if cnd.Type == typ {
				found = true
				if cnd.Status != metav1.ConditionTrue || cnd.ObservedGeneration != 3 {
					t.Errorf("condition %s: got %s (generation %d); want True for generation 3", typ, cnd.Status, cnd.ObservedGeneration)
				}
			}
		}
		if !found {
			t.Errorf("condition %s missing from %+v", typ, ours.Conditions)
		}
	}
}
