package gatewayapi

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatecheck/gatecheck/internal/version"
)

func TestManifestsArePinnedAndComplete(t *testing.T) {
	t.Parallel()
	for _, ch := range Channels {
		t.Run(ch, func(t *testing.T) {
			t.Parallel()
			objs, err := Manifests(ch)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]bool{}
			seenPolicy := false
			for _, o := range objs {
				if o.Obj.GetKind() != "CustomResourceDefinition" {
					// The upstream safe-upgrades policy is annotated "standard" in both channels.
					seenPolicy = true
					continue
				}
				if seenPolicy {
					t.Errorf("%s comes after the admission policy; want every CRD first", o)
				}
				a := o.Obj.GetAnnotations()
				if a[bundleVersionAnnotation] != version.GatewayAPIVersion || a[channelAnnotation] != ch {
					t.Errorf("%s: bundle %q channel %q; want %s %s", o, a[bundleVersionAnnotation], a[channelAnnotation], version.GatewayAPIVersion, ch)
				}
				kinds[o.Obj.GetName()] = true
			}
			for _, want := range []string{"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
				"grpcroutes.gateway.networking.k8s.io", "tcproutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io"} {
				if !kinds[want] {
					t.Errorf("channel %s lacks CRD %s", ch, want)
				}
			}
		})
	}
	if _, err := Manifests("beta"); err == nil || !strings.Contains(err.Error(), `channel "beta"`) {
		t.Fatalf("Manifests(beta) = %v; want an error naming the channel", err)
	}
}

func crd(name, v, ch string) apiextensionsv1.CustomResourceDefinition {
	return apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{bundleVersionAnnotation: v, channelAnnotation: ch}},
		Spec:       apiextensionsv1.CustomResourceDefinitionSpec{Group: group},
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	got, err := inspect([]apiextensionsv1.CustomResourceDefinition{crd("a", "v1.6.3", "standard"), crd("b", "v1.6.3", "standard")})
	if err != nil || got.Version != "v1.6.3" || got.Channel != "standard" {
		t.Fatalf("inspect = %+v, %v; want v1.6.3 standard", got, err)
	}
	_, err = inspect([]apiextensionsv1.CustomResourceDefinition{crd("a", "v1.6.3", "standard"), crd("b", "v1.5.0", "standard")})
	if err == nil || !strings.Contains(err.Error(), "CRD b is Gateway API v1.5.0") {
		t.Fatalf("inspect(mixed) = %v; want an error naming CRD b", err)
	}
}
