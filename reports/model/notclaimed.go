package model

// NotClaimedEntryName names the report entry a suite adds right before it skips a spec (or, from
// BeforeSuite, the whole suite) because the GatewayClass does not claim a feature the spec needs.
// Ingest turns that skip into OutcomeNotClaimed; any other skip stays "skipped".
const NotClaimedEntryName = "gatecheck.notClaimed"

// NotClaimed is the value of a NotClaimedEntryName entry.
type NotClaimed struct {
	// GatewayClass is the class whose claims were read.
	GatewayClass string `json:"gatewayClass,omitempty"`
	// Features are the needed features it does not claim.
	Features []string `json:"features"`
	// Source says where the claims came from (the GatewayClass's status.supportedFeatures, or
	// the profile's conformance.supportedFeatures).
	Source string `json:"source,omitempty"`
}

// NotClaimedEntry is the report entry for AddReportEntry(model.NotClaimedEntry(...)).
func NotClaimedEntry(n NotClaimed) (string, any) { return NotClaimedEntryName, n }
