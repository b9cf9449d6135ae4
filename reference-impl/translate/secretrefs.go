package translate

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// SecretRefs lists the Secrets that translating in may read: those the listeners of
// in's Gateways of our classes reference as certificates, in the Gateway's namespace or in
// another namespace whose ReferenceGrant allows it. The controller reads exactly these
// Secrets and no other (in.Secrets is ignored here).
func SecretRefs(in *Input) []types.NamespacedName {
	t := &translator{Env: &Env{in: in, grants: map[string][]*gwv1b1.ReferenceGrant{}}}
	for _, g := range in.ReferenceGrants {
		t.grants[g.Namespace] = append(t.grants[g.Namespace], g)
	}
	ours := map[string]bool{}
	for _, gc := range in.GatewayClasses {
		if string(gc.Spec.ControllerName) == in.ControllerName && gc.DeletionTimestamp == nil {
			ours[gc.Name] = true
		}
	}
	seen := map[types.NamespacedName]bool{}
	for _, gw := range in.Gateways {
		if !ours[string(gw.Spec.GatewayClassName)] || gw.DeletionTimestamp != nil {
			continue
		}
		if k, ok, reason, _ := t.backendClientCertRef(gw); ok && reason == "" { // backendtls.go
			seen[k] = true
		}
		for _, l := range gw.Spec.Listeners {
			if l.TLS == nil {
				continue
			}
			for _, ref := range l.TLS.CertificateRefs {
				g, k := ptrStr(ref.Group), ptrStr(ref.Kind)
				if (g != "" && g != "core") || (k != "" && k != kindSecret) {
					continue
				}
				ns := gw.Namespace
				if ref.Namespace != nil && *ref.Namespace != "" {
					ns = string(*ref.Namespace)
				}
				if ns != gw.Namespace && !t.granted(gatewayGroup, kindGateway, gw.Namespace, "", kindSecret, ns, string(ref.Name)) {
					continue
				}
				seen[nn(ns, string(ref.Name))] = true
			}
		}
	}
	for _, k := range IngressSecretRefs(in) {
		seen[k] = true
	}
	out := make([]types.NamespacedName, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return out
}
