package controller

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestProvisionedLabels checks the proxy Service, Deployment and Pod template carry the
// GEP-1762 labels (by which gatecheck's nodeport and port-forward modes find the data
// plane), while the selectors keep only the controller's own labels: a Deployment's selector
// is immutable, so a controller upgrade must not change it.
func TestProvisionedLabels(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("g", 64)
	cases := []struct {
		name, gateway, class string
		want                 map[string]string
	}{
		{"short names", "web", "gc", map[string]string{gwv1.GatewayNameLabelKey: "web", gwv1.GatewayClassNameLabelKey: "gc"}},
		{"gateway name too long for a label value", long, "gc", map[string]string{gwv1.GatewayClassNameLabelKey: "gc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := &provisioner{image: "img:dev", serviceType: corev1.ServiceTypeClusterIP, replicas: 1}
			gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: c.gateway, Namespace: "ns", UID: "u"}, Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(c.class)}}
			sel := map[string]string{LabelManagedBy: ManagedByValue, LabelProxyFor: gatewayHash(gw)}
			want := map[string]string{}
			for k, v := range sel {
				want[k] = v
			}
			for k, v := range c.want {
				want[k] = v
			}
			dep, svc := p.deployment(gw, "http://ctl"), p.service(gw, []int32{80})
			for what, got := range map[string]map[string]string{
				"Deployment metadata.labels":   dep.Labels,
				"Pod template metadata.labels": dep.Spec.Template.Labels,
				"Service metadata.labels":      svc.Labels,
				"Deployment spec.selector":     dep.Spec.Selector.MatchLabels,
				"Service spec.selector":        svc.Spec.Selector,
			} {
				w := want
				if strings.HasSuffix(what, "selector") {
					w = sel
				}
				if diff := cmp.Diff(w, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", what, diff)
				}
			}
		})
	}
}
