package incremental

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// TestTranslatorFollowsBackendTLSPolicies: a memoised translation must not replay a route's
// backends after a policy or a CA ConfigMap changed, and the incremental path must leave
// policy statuses to a whole translation.
func TestTranslatorFollowsBackendTLSPolicies(t *testing.T) {
	in := loadInput(t, goldenDir+"/backendtlspolicy-valid.in.yaml")
	version(in)
	m := New()
	m.Translate(in)
	serverName := func(out *translate.Output) string {
		for _, l := range out.Gateways[types.NamespacedName{Namespace: "infra", Name: "gw"}].Snapshot.Listeners {
			for _, r := range l.HTTPRoutes {
				for _, rule := range r.Rules {
					for _, b := range rule.Backends {
						if b.Name == "infra/secure:443" && b.TLS != nil {
							return b.TLS.ServerName
						}
					}
				}
			}
		}
		return ""
	}
	for _, p := range in.BackendTLSPolicies {
		if p.Name == "secure" {
			p.Spec.Validation.Hostname = "changed.example.com"
			p.Generation++
		}
	}
	if got := serverName(m.Translate(in)); got != "changed.example.com" {
		t.Fatalf("after the policy changed: serverName %q; want changed.example.com (memo replayed a stale backend)", got)
	}
	for _, cm := range in.ConfigMaps {
		cm.Data = map[string]string{"ca.crt": "gone"}
		cm.ResourceVersion = "2"
	}
	out := m.Translate(in)
	if diff := cmp.Diff(renderYAML(t, translate.Translate(in)), renderYAML(t, out)); diff != "" {
		t.Fatalf("after the CA ConfigMap changed, memo output differs from Translate (-want +got):\n%s", diff)
	}
	st := out.BackendTLSPolicies[types.NamespacedName{Namespace: "infra", Name: "secure"}]
	if len(st) != 1 || st[0].Conditions[0].Reason != string(gwv1.BackendTLSPolicyReasonNoValidCACertificate) {
		t.Fatalf("policy status after its CA went bad: %+v; want Accepted False NoValidCACertificate", st)
	}
	if _, ok := m.Routes(in, []RouteChange{{Kind: kindHTTP, Key: types.NamespacedName{Namespace: "infra", Name: "r"}, Object: in.HTTPRoutes[0]}}); ok {
		t.Fatal("Translator.Routes with BackendTLSPolicies present: ok; want a whole translation (policy ancestors)")
	}
}
