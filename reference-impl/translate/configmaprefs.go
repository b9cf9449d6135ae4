package translate

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

const kindConfigMap = "ConfigMap"

// ConfigMapRefs lists the ConfigMaps that translating in may read, sorted: the CA certificate
// bundles that our Gateways' frontend client certificate validation references
// (spec.tls.frontend), in the Gateway's namespace or in another namespace whose ReferenceGrant
// allows it. The controller reads exactly these ConfigMaps and no other (in.ConfigMaps is
// ignored here). BackendTLSPolicy's CA certificates (ConfigMaps too) are to be added here as
// well, so that one reader (controller/configmaps.go) serves both.
func ConfigMapRefs(in *Input) []types.NamespacedName {
	t := &translator{Env: &Env{in: in, grants: map[string][]*gwv1b1.ReferenceGrant{}}}
	for _, g := range in.ReferenceGrants {
		t.grants[g.Namespace] = append(t.grants[g.Namespace], g)
	}
	seen := map[types.NamespacedName]bool{}
	for _, gw := range ourGateways(in) {
		for _, ref := range frontendCARefs(gw) {
			if k, ok := t.permittedCARef(gw, ref); ok {
				seen[k] = true
			}
		}
	}
	for _, k := range backendTLSConfigMapRefs(in) { // backendtls.go
		seen[k] = true
	}
	out := make([]types.NamespacedName, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// ourGateways returns in's Gateways of our (not deleted) classes that are not being deleted.
func ourGateways(in *Input) []*gwv1.Gateway {
	ours := map[string]bool{}
	for _, gc := range in.GatewayClasses {
		if string(gc.Spec.ControllerName) == in.ControllerName && gc.DeletionTimestamp == nil {
			ours[gc.Name] = true
		}
	}
	var out []*gwv1.Gateway
	for _, gw := range in.Gateways {
		if ours[string(gw.Spec.GatewayClassName)] && gw.DeletionTimestamp == nil {
			out = append(out, gw)
		}
	}
	return out
}

// frontendCARefs returns every CA certificate reference of gw's frontend TLS validation,
// default and per port.
func frontendCARefs(gw *gwv1.Gateway) []gwv1.ObjectReference {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil
	}
	f := gw.Spec.TLS.Frontend
	var out []gwv1.ObjectReference
	if f.Default.Validation != nil {
		out = append(out, f.Default.Validation.CACertificateRefs...)
	}
	for _, p := range f.PerPort {
		if p.TLS.Validation != nil {
			out = append(out, p.TLS.Validation.CACertificateRefs...)
		}
	}
	return out
}

// permittedCARef resolves a CA certificate reference of gw to the ConfigMap it names; ok is
// false when it names another kind, or another namespace without a ReferenceGrant allowing it.
func (t *translator) permittedCARef(gw *gwv1.Gateway, ref gwv1.ObjectReference) (k types.NamespacedName, ok bool) {
	if coreGroup(string(ref.Group)) != "" || string(ref.Kind) != kindConfigMap {
		return k, false
	}
	ns := gw.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	if ns != gw.Namespace && !t.granted(gatewayGroup, kindGateway, gw.Namespace, "", kindConfigMap, ns, string(ref.Name)) {
		return k, false
	}
	return nn(ns, string(ref.Name)), true
}
