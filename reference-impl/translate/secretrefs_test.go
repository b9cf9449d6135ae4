package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// TestSecretRefs: the Secrets the controller may read are exactly those HTTPS listeners of
// our Gateways reference, across namespaces only where a ReferenceGrant allows.
func TestSecretRefs(t *testing.T) {
	t.Parallel()
	ns := func(s string) *gwv1.Namespace { n := gwv1.Namespace(s); return &n }
	kind := func(s string) *gwv1.Kind { k := gwv1.Kind(s); return &k }
	listener := func(name string, refs ...gwv1.SecretObjectReference) gwv1.Listener {
		return gwv1.Listener{Name: gwv1.SectionName(name), Port: 443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{CertificateRefs: refs}}
	}
	gw := func(namespace, name, class string, ls ...gwv1.Listener) *gwv1.Gateway {
		return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class), Listeners: ls}}
	}
	in := &Input{
		ControllerName: "gatecheck.dev/reference",
		GatewayClasses: []*gwv1.GatewayClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "ours"}, Spec: gwv1.GatewayClassSpec{ControllerName: "gatecheck.dev/reference"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}},
		},
		Gateways: []*gwv1.Gateway{
			gw("app", "web", "ours",
				listener("same", gwv1.SecretObjectReference{Name: "web-cert"}),
				listener("granted", gwv1.SecretObjectReference{Name: "shared", Namespace: ns("certs")}),
				listener("not-granted", gwv1.SecretObjectReference{Name: "private", Namespace: ns("vault")}),
				listener("not-a-secret", gwv1.SecretObjectReference{Name: "cm", Kind: kind("ConfigMap")}),
				gwv1.Listener{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}),
			gw("app", "other-impl", "theirs", listener("x", gwv1.SecretObjectReference{Name: "their-cert"})),
		},
		ReferenceGrants: []*gwv1b1.ReferenceGrant{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "certs", Name: "g"},
			Spec: gwv1b1.ReferenceGrantSpec{
				From: []gwv1b1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "Gateway", Namespace: "app"}},
				To:   []gwv1b1.ReferenceGrantTo{{Group: "", Kind: "Secret"}},
			},
		}},
	}
	want := []types.NamespacedName{{Namespace: "app", Name: "web-cert"}, {Namespace: "certs", Name: "shared"}}
	if diff := cmp.Diff(want, SecretRefs(in)); diff != "" {
		t.Errorf("SecretRefs (-want +got):\n%s", diff)
	}
}
