package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestGoldenCoverEveryReason fails when a condition reason this package writes appears in no
// golden output, so a new reason cannot land without a golden case showing it.
func TestGoldenCoverEveryReason(t *testing.T) {
	t.Parallel()
	written := []string{
		string(gwv1.GatewayClassReasonAccepted), string(gwv1.GatewayClassReasonInvalidParameters), string(gwv1.GatewayClassReasonSupportedVersion),
		string(gwv1.GatewayReasonAccepted), string(gwv1.GatewayReasonListenersNotValid), string(gwv1.GatewayReasonUnsupportedAddress),
		string(gwv1.GatewayReasonProgrammed), string(gwv1.GatewayReasonInvalid), string(gwv1.GatewayReasonAddressNotAssigned), string(gwv1.GatewayReasonPending),
		string(gwv1.ListenerReasonAccepted), string(gwv1.ListenerReasonUnsupportedProtocol), string(gwv1.ListenerReasonUnsupportedValue),
		string(gwv1.ListenerReasonProtocolConflict), string(gwv1.ListenerReasonHostnameConflict), string(gwv1.ListenerReasonNoConflicts),
		string(gwv1.ListenerReasonResolvedRefs), string(gwv1.ListenerReasonInvalidRouteKinds), string(gwv1.ListenerReasonInvalidCertificateRef), string(gwv1.ListenerReasonRefNotPermitted),
		string(gwv1.ListenerReasonProgrammed), string(gwv1.ListenerReasonInvalid), string(gwv1.ListenerReasonPending),
		string(gwv1.RouteReasonAccepted), string(gwv1.RouteReasonNoMatchingParent), string(gwv1.RouteReasonNotAllowedByListeners),
		string(gwv1.RouteReasonNoMatchingListenerHostname), string(gwv1.RouteReasonUnsupportedValue),
		string(gwv1.RouteReasonResolvedRefs), string(gwv1.RouteReasonInvalidKind), string(gwv1.RouteReasonRefNotPermitted), string(gwv1.RouteReasonBackendNotFound),
	}
	outs, _ := filepath.Glob("testdata/*.out.yaml")
	var all strings.Builder
	for _, f := range outs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, r := range written {
		if !strings.Contains(all.String(), "reason: "+r+"\n") {
			t.Errorf("reason %s: in no testdata/*.out.yaml; want a golden case that shows it", r)
		}
	}
}
