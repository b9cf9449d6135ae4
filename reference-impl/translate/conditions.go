package translate

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// SupportedFeatures is what the reference implementation claims in GatewayClass status, and
// therefore what the upstream conformance suite tests when no feature flags are given.
var SupportedFeatures = []features.FeatureName{
	features.SupportGateway,
	features.SupportHTTPRoute,
	features.SupportReferenceGrant,
	features.SupportGRPCRoute,
	features.SupportTCPRoute,
	features.SupportUDPRoute,              // issue 19: proxy/udp.go, per-flow backend choice with idle expiry
	features.SupportTLSRoute,              // issue 19: proxy/stream.go, passthrough by SNI
	features.SupportTLSRouteModeTerminate, // and Terminate with the listener's certificates
	features.SupportTLSRouteModeMixed,     // both modes on one port (the SNI picks the listener)
	features.SupportGatewayPort8080,
	features.SupportHTTPRouteRequestMirror,
	features.SupportHTTPRouteRequestMultipleMirrors,
	features.SupportHTTPRouteRequestPercentageMirror,
	features.SupportHTTPRouteBackendProtocolH2C,
	features.SupportHTTPRouteRequestTimeout,
	features.SupportHTTPRouteBackendTimeout,
	features.SupportHTTPRouteQueryParamMatching,
	features.SupportHTTPRouteMethodMatching,
	features.SupportHTTPRouteResponseHeaderModification,
	features.SupportHTTPRoutePathRedirect,
	features.SupportHTTPRouteHostRewrite,
	features.SupportHTTPRoutePathRewrite,
	features.SupportHTTPRoutePortRedirect,
	features.SupportHTTPRouteSchemeRedirect,
	// issue 19 item 3 (proxy extended_test.go, cors_test.go; translate testdata/route-extended-http):
	features.SupportHTTPRoute303RedirectStatusCode,
	features.SupportHTTPRoute307RedirectStatusCode,
	features.SupportHTTPRoute308RedirectStatusCode,
	features.SupportHTTPRouteBackendRequestHeaderModification,
	features.SupportHTTPRouteNamedRouteRule,
	features.SupportHTTPRouteParentRefPort,
	features.SupportHTTPRouteDestinationPortMatching,
	features.SupportHTTPRouteBackendProtocolWebSocket,
	features.SupportGatewayHTTPListenerIsolation,
	features.SupportHTTPRouteCORS,
	features.SupportGRPCRouteNamedRouteRule,
	features.SupportGatewayHTTPSListenerDetectMisdirectedRequests, // proxy handler.go 421 (issue 18 item 4), tls_test.go
	// issue 19 item 3: spec.tls.frontend client certificate validation (translate/frontendtls.go,
	// proxy/frontendtls.go; frontendtls_test.go, testdata/gateway-frontend-validation*):
	features.SupportGatewayFrontendClientCertificateValidation,
	features.SupportGatewayFrontendClientCertificateValidationInsecureFallback,
	// issue 19 item 3: spec.infrastructure and spec.addresses (translate/infrastructure.go,
	// controller/provision.go; controller/infrastructure_test.go, testdata/gateway-*):
	features.SupportGatewayInfrastructure,
	features.SupportGatewayStaticAddresses,
	features.SupportGatewayAddressEmpty,
	// issue 19 item 3: TLS to backends (translate/backendtls.go, proxy/backendtls.go; proxy
	// backendtls_test.go, testdata/backendtlspolicy-*, gateway-backend-client-certificate):
	features.SupportBackendTLSPolicy,
	features.SupportBackendTLSPolicySANValidation,
	features.SupportGatewayBackendClientCertificate,
}

func supportedFeatures() []gwv1.SupportedFeature {
	out := make([]gwv1.SupportedFeature, 0, len(SupportedFeatures))
	for _, f := range SupportedFeatures {
		out = append(out, gwv1.SupportedFeature{Name: gwv1.FeatureName(f)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// cond builds a condition; LastTransitionTime is left for the status writer, which keeps the
// previous time when type, status and reason are unchanged.
func cond[T ~string, R ~string](typ T, ok bool, reason R, gen int64, msg string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: string(typ), Status: s, Reason: string(reason), Message: msg, ObservedGeneration: gen}
}

// setCond replaces the condition of the same type or appends it.
func setCond(cs []metav1.Condition, c metav1.Condition) []metav1.Condition {
	for i := range cs {
		if cs[i].Type == c.Type {
			cs[i] = c
			return cs
		}
	}
	return append(cs, c)
}
