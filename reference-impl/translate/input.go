package translate

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Input is everything translation reads. Slices may be in any order; Translate sorts what it
// needs so the output is deterministic.
type Input struct {
	// ControllerName selects the GatewayClasses (and through them the Gateways) we own.
	ControllerName string

	GatewayClasses  []*gwv1.GatewayClass
	Gateways        []*gwv1.Gateway
	HTTPRoutes      []*gwv1.HTTPRoute
	GRPCRoutes      []*gwv1.GRPCRoute
	TCPRoutes       []*gwv1.TCPRoute
	UDPRoutes       []*gwv1.UDPRoute
	TLSRoutes       []*gwv1.TLSRoute
	ReferenceGrants []*gwv1b1.ReferenceGrant
	Services        []*corev1.Service
	EndpointSlices  []*discoveryv1.EndpointSlice
	Secrets         []*corev1.Secret
	Namespaces      []*corev1.Namespace
	// ConfigMaps are the ConfigMaps named by ConfigMapRefs (CA certificate bundles), read by
	// the controller's referencedConfigMaps.
	ConfigMaps []*corev1.ConfigMap
	// BackendTLSPolicies: see backendtls.go (the ConfigMaps they name are in ConfigMaps).
	BackendTLSPolicies []*gwv1.BackendTLSPolicy
	// Ingresses and IngressClasses: see ingress.go (IngressClasses of ours name the Gateway
	// whose proxies serve their Ingresses).
	Ingresses      []*networkingv1.Ingress
	IngressClasses []*networkingv1.IngressClass
}

// Output is the result of one translation.
type Output struct {
	// GatewayClasses holds the status of every GatewayClass we own, by name.
	GatewayClasses map[string]gwv1.GatewayClassStatus
	// Gateways holds, for every Gateway of a class we own, its status and IR.
	Gateways map[types.NamespacedName]*GatewayResult
	// Route statuses: only the parents that are Gateways we own (other controllers' entries are
	// left to them). A route with no such parent is absent.
	HTTPRoutes map[types.NamespacedName][]gwv1.RouteParentStatus
	GRPCRoutes map[types.NamespacedName][]gwv1.RouteParentStatus
	TCPRoutes  map[types.NamespacedName][]gwv1.RouteParentStatus
	UDPRoutes  map[types.NamespacedName][]gwv1.RouteParentStatus
	TLSRoutes  map[types.NamespacedName][]gwv1.RouteParentStatus
	// BackendTLSPolicies holds the ancestor statuses (Gateways of ours) of the policies that
	// apply to backends of our Gateways' routes; a policy that applies to none is absent.
	BackendTLSPolicies map[types.NamespacedName][]gwv1.PolicyAncestorStatus
}

// GatewayResult is one Gateway's translation.
type GatewayResult struct {
	// Generation is the Gateway's metadata.generation the status was computed for.
	Generation int64
	// Status has every condition except the data-plane dependent ones (Gateway and listener
	// Programmed, addresses), which ApplyDataPlane fills in once the data plane is known.
	Status gwv1.GatewayStatus
	// Snapshot is the IR with Version 0; the publisher assigns versions.
	Snapshot *ir.Snapshot
	// Ports are the distinct ports of the listeners in Snapshot, ascending: what the proxy
	// Service must expose.
	Ports []int32
	// UDPPorts are the ports of the UDP listeners in Snapshot, ascending: the proxy Service
	// exposes them with protocol UDP.
	UDPPorts []int32
	// Valid is false when no listener could be programmed (the Gateway is not Accepted).
	Valid bool
	// Invalid says why Valid is false when it is not the user's doing.
	Invalid string
}

// AddRoute appends an HTTPRoute, GRPCRoute, TCPRoute, UDPRoute or TLSRoute to its list; false
// for anything else.
func (in *Input) AddRoute(route any) bool {
	switch r := route.(type) {
	case *gwv1.HTTPRoute:
		in.HTTPRoutes = append(in.HTTPRoutes, r)
	case *gwv1.GRPCRoute:
		in.GRPCRoutes = append(in.GRPCRoutes, r)
	case *gwv1.TCPRoute:
		in.TCPRoutes = append(in.TCPRoutes, r)
	case *gwv1.UDPRoute:
		in.UDPRoutes = append(in.UDPRoutes, r)
	case *gwv1.TLSRoute:
		in.TLSRoutes = append(in.TLSRoutes, r)
	default:
		return false
	}
	return true
}

// Add appends obj to the list of its kind, reporting false for a kind Input does not hold (the
// golden tests build their Inputs from decoded documents with it).
func (in *Input) Add(obj any) bool {
	switch o := obj.(type) {
	case *gwv1.GatewayClass:
		in.GatewayClasses = append(in.GatewayClasses, o)
	case *gwv1.Gateway:
		in.Gateways = append(in.Gateways, o)
	case *gwv1b1.ReferenceGrant:
		in.ReferenceGrants = append(in.ReferenceGrants, o)
	case *corev1.Service:
		in.Services = append(in.Services, o)
	case *discoveryv1.EndpointSlice:
		in.EndpointSlices = append(in.EndpointSlices, o)
	case *corev1.Secret:
		in.Secrets = append(in.Secrets, o)
	case *corev1.Namespace:
		in.Namespaces = append(in.Namespaces, o)
	case *corev1.ConfigMap:
		in.ConfigMaps = append(in.ConfigMaps, o)
	case *gwv1.BackendTLSPolicy:
		in.BackendTLSPolicies = append(in.BackendTLSPolicies, o)
	case *networkingv1.Ingress:
		in.Ingresses = append(in.Ingresses, o)
	case *networkingv1.IngressClass:
		in.IngressClasses = append(in.IngressClasses, o)
	default:
		return in.AddRoute(obj)
	}
	return true
}
