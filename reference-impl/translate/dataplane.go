package translate

import (
	"cmp"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// DataPlane is what the controller knows about a Gateway's proxies after publishing its
// snapshot.
type DataPlane struct {
	// Addresses the proxies are reachable at (the proxy Service's address).
	Addresses []gwv1.GatewayStatusAddress
	// AddressReason and AddressMessage say why Addresses is empty: AddressNotUsable when
	// spec.addresses asks for what the load balancer cannot give; default AddressNotAssigned.
	AddressReason  gwv1.GatewayConditionReason
	AddressMessage string
	// Ready is true when at least one proxy is ready and every ready proxy acknowledged the
	// Gateway's current snapshot version.
	Ready bool
	// Message says what is missing when not Ready.
	Message string
	// Reason, when set and not Ready, is the Programmed condition's reason, ahead of a missing
	// address (the proxies cannot be provisioned at all); default Pending.
	Reason gwv1.GatewayConditionReason
}

// ApplyDataPlane sets the data-plane dependent parts of a Gateway's status: addresses and the
// Programmed conditions of the Gateway and its listeners.
func ApplyDataPlane(res *GatewayResult, dp DataPlane) {
	gen := res.Generation
	res.Status.Addresses = dp.Addresses
	msg := dp.Message
	if msg == "" {
		msg = "waiting for the proxies to apply the configuration"
	}
	var c = cond(gwv1.GatewayConditionProgrammed, true, gwv1.GatewayReasonProgrammed, gen, "proxies serve the current configuration")
	switch {
	case !res.Valid:
		m := "no listener can be programmed"
		if res.Invalid != "" {
			m = res.Invalid
		}
		c = cond(gwv1.GatewayConditionProgrammed, false, gwv1.GatewayReasonInvalid, gen, m)
	case !dp.Ready && dp.Reason != "":
		c = cond(gwv1.GatewayConditionProgrammed, false, dp.Reason, gen, msg)
	case len(dp.Addresses) == 0:
		reason, m := cmp.Or(dp.AddressReason, gwv1.GatewayReasonAddressNotAssigned), cmp.Or(dp.AddressMessage, "the proxy Service has no address yet")
		c = cond(gwv1.GatewayConditionProgrammed, false, reason, gen, m)
	case !dp.Ready:
		c = cond(gwv1.GatewayConditionProgrammed, false, gwv1.GatewayReasonPending, gen, msg)
	}
	res.Status.Conditions = setCond(res.Status.Conditions, c)

	inIR := map[string]bool{}
	if res.Snapshot != nil {
		for _, l := range res.Snapshot.Listeners {
			inIR[l.Name] = true
		}
	}
	for i := range res.Status.Listeners {
		ls := &res.Status.Listeners[i]
		lc := cond(gwv1.ListenerConditionProgrammed, true, gwv1.ListenerReasonProgrammed, gen, "listener is served")
		switch {
		case !inIR[string(ls.Name)] || !res.Valid:
			lc = cond(gwv1.ListenerConditionProgrammed, false, gwv1.ListenerReasonInvalid, gen, "listener is not valid")
		case len(dp.Addresses) == 0 || !dp.Ready:
			lc = cond(gwv1.ListenerConditionProgrammed, false, gwv1.ListenerReasonPending, gen, msg)
		}
		ls.Conditions = setCond(ls.Conditions, lc)
	}
}
