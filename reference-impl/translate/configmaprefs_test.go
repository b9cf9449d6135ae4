package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// TestConfigMapRefs: the ConfigMaps the controller may read are exactly those our Gateways'
// frontend validation names as CA certificates (default and per port), across namespaces only
// where a ReferenceGrant allows; other kinds and other classes' Gateways are not read.
func TestConfigMapRefs(t *testing.T) {
	t.Parallel()
	ref := func(ns, name, kind string) gwv1.ObjectReference {
		r := gwv1.ObjectReference{Kind: gwv1.Kind(kind), Name: gwv1.ObjectName(name)}
		if ns != "" {
			n := gwv1.Namespace(ns)
			r.Namespace = &n
		}
		return r
	}
	validation := func(refs ...gwv1.ObjectReference) gwv1.TLSConfig {
		return gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{CACertificateRefs: refs}}
	}
	gw := func(namespace, name, class string, f *gwv1.FrontendTLSConfig) *gwv1.Gateway {
		return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners:        []gwv1.Listener{{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType}},
			TLS:              &gwv1.GatewayTLSConfig{Frontend: f},
		}}
	}
	in := &Input{
		ControllerName: "gatecheck.dev/reference",
		GatewayClasses: []*gwv1.GatewayClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "ours"}, Spec: gwv1.GatewayClassSpec{ControllerName: "gatecheck.dev/reference"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}},
		},
		Gateways: []*gwv1.Gateway{
			gw("app", "web", "ours", &gwv1.FrontendTLSConfig{
				Default: validation(ref("", "default-ca", "ConfigMap"), ref("", "a-secret", "Secret"), ref("vault", "private", "ConfigMap")),
				PerPort: []gwv1.TLSPortConfig{
					{Port: 8443, TLS: validation(ref("certs", "shared", "ConfigMap"))},
					{Port: 9443, TLS: gwv1.TLSConfig{}},
				},
			}),
			gw("app", "no-frontend", "ours", nil),
			gw("app", "other-impl", "theirs", &gwv1.FrontendTLSConfig{Default: validation(ref("", "their-ca", "ConfigMap"))}),
		},
		ReferenceGrants: []*gwv1b1.ReferenceGrant{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "certs", Name: "g"},
			Spec: gwv1b1.ReferenceGrantSpec{
				From: []gwv1b1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "Gateway", Namespace: "app"}},
				To:   []gwv1b1.ReferenceGrantTo{{Group: "", Kind: "ConfigMap"}},
			},
		}},
	}
	want := []types.NamespacedName{{Namespace: "app", Name: "default-ca"}, {Namespace: "certs", Name: "shared"}}
	if diff := cmp.Diff(want, ConfigMapRefs(in)); diff != "" {
		t.Errorf("ConfigMapRefs (-want +got):\n%s", diff)
	}
}
