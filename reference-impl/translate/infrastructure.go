package translate

// What a Gateway asks of the objects provisioned for it (spec.addresses, spec.infrastructure),
// and which of those requests the reference implementation refuses before provisioning.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	// ReservedPrefix is the prefix of the label and annotation keys the controller sets on the
	// objects it provisions (gatecheck.dev/proxy-for selects the proxy Pods,
	// gatecheck.dev/spec-hash skips no-op writes): spec.infrastructure may not set them.
	ReservedPrefix = "gatecheck.dev/"
	// LabelManagedBy marks everything the controller provisions; it is part of the proxy
	// Deployment's selector, so spec.infrastructure may not set it either.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LoadBalancerIPsAnnotation asks the load balancer for the proxy Service's addresses
	// (MetalLB's key; comma-separated, at most one per IP family). The controller sets it from
	// spec.addresses.
	LoadBalancerIPsAnnotation = "metallb.io/loadBalancerIPs"
)

// RequestedAddresses are the addresses spec.addresses names: IPAddress entries with a value
// (an entry without one asks for any address, which is what the load balancer gives anyway).
// Entries gatewaySpecProblem refuses are left out.
func RequestedAddresses(gw *gwv1.Gateway) []netip.Addr {
	var out []netip.Addr
	for _, a := range gw.Spec.Addresses {
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			continue
		}
		if ip, err := netip.ParseAddr(a.Value); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// gatewaySpecProblem is why the Gateway is not accepted at all, as the Accepted reason and a
// message naming the field, or "" when nothing in spec.infrastructure or spec.addresses stops it.
func gatewaySpecProblem(gw *gwv1.Gateway) (gwv1.GatewayConditionReason, string) {
	var infra gwv1.GatewayInfrastructure
	if gw.Spec.Infrastructure != nil {
		infra = *gw.Spec.Infrastructure
	}
	if r := infra.ParametersRef; r != nil {
		// The reference implementation has no parameters resource: every reference is one it
		// cannot use (the spec: "refers to an unsupported kind").
		group := string(r.Group)
		if group == "" {
			group = "core"
		}
		return gwv1.GatewayReasonInvalidParameters, fmt.Sprintf("spec.infrastructure.parametersRef: %s %q (group %s): this implementation takes no parameters; remove the reference", r.Kind, r.Name, group)
	}
	for i, a := range gw.Spec.Addresses {
		typ := gwv1.IPAddressType
		if a.Type != nil {
			typ = *a.Type
		}
		if typ != gwv1.IPAddressType {
			return gwv1.GatewayReasonUnsupportedAddress, fmt.Sprintf("spec.addresses[%d]: type %q is not supported (only IPAddress: the proxy Service's load balancer address)", i, typ)
		}
		if a.Value == "" {
			continue // any address
		}
		if _, err := netip.ParseAddr(a.Value); err != nil {
			return gwv1.GatewayReasonUnsupportedAddress, fmt.Sprintf("spec.addresses[%d]: value %q is not an IP address", i, a.Value)
		}
	}
	for _, k := range sortedKeys(infra.Labels) {
		if msg := reservedKey(gw, "labels", string(k), string(infra.Labels[k])); msg != "" {
			return gwv1.GatewayReasonInvalid, msg
		}
	}
	for _, k := range sortedKeys(infra.Annotations) {
		if msg := reservedKey(gw, "annotations", string(k), string(infra.Annotations[k])); msg != "" {
			return gwv1.GatewayReasonInvalid, msg
		}
	}
	return "", ""
}

// reservedKey says why spec.infrastructure.<field>[key]=value may not be set, or "". Keys the
// controller sets itself are refused (rather than silently dropped or allowed to win) when
// their value would differ from the controller's: the proxy Deployment's selector and the
// Service's endpoints depend on them, and tools find a Gateway's data plane by the GEP-1762
// labels.
func reservedKey(gw *gwv1.Gateway, field, key, value string) string {
	where := fmt.Sprintf("spec.infrastructure.%s[%s]", field, key)
	switch {
	case strings.HasPrefix(key, ReservedPrefix):
		return fmt.Sprintf("%s: keys with the prefix %s are set by the controller (they select the proxy Pods); use another key", where, ReservedPrefix)
	case field == "labels" && key == LabelManagedBy:
		return fmt.Sprintf("%s: the controller sets this label (it selects the proxy Pods); use another key", where)
	case field == "labels" && key == gwv1.GatewayNameLabelKey && value != gw.Name:
		return fmt.Sprintf("%s: %q is not this Gateway's name %q; the controller labels the proxies with their Gateway's name (GEP-1762)", where, value, gw.Name)
	case field == "labels" && key == gwv1.GatewayClassNameLabelKey && value != string(gw.Spec.GatewayClassName):
		return fmt.Sprintf("%s: %q is not this Gateway's class %q; the controller labels the proxies with their Gateway's class (GEP-1762)", where, value, gw.Spec.GatewayClassName)
	case field == "annotations" && key == LoadBalancerIPsAnnotation && len(RequestedAddresses(gw)) > 0:
		return fmt.Sprintf("%s: spec.addresses names the addresses, and the controller sets this annotation from them; set one or the other", where)
	}
	return ""
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
