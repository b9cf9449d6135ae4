package model

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
)

// SchemaVersion is the version of the report's JSON shape. It changes only when a field is
// removed or changes meaning; added fields keep the version.
const SchemaVersion = "gatecheck.report/v1"

// Report is one gatecheck run: what ran where, every suite's specs with their measurements, the
// upstream ConformanceReport and, once evaluated, the gate's verdict.
type Report struct {
	SchemaVersion string       `json:"schemaVersion"`
	Run           Run          `json:"run"`
	Suites        []Suite      `json:"suites"`
	Conformance   *Conformance `json:"conformance,omitempty"`
	// Upstream is the upstream suite's per-test record (upstream.go).
	Upstream *Upstream   `json:"upstream,omitempty"`
	Gate     *GateResult `json:"gate,omitempty"`
}

// Run is the metadata of a run. Empty fields were not known to whoever wrote the report.
type Run struct {
	GatecheckVersion string `json:"gatecheckVersion,omitempty"`
	Implementation   string `json:"implementation,omitempty"`
	GatewayClass     string `json:"gatewayClass,omitempty"`
	ClusterProvider  string `json:"clusterProvider,omitempty"`
	// ReachMode is how the traffic suites dialled Gateways (status-address, nodeport or
	// port-forward): latencies measured through a port-forward include its overhead.
	ReachMode         string    `json:"reachMode,omitempty"`
	KubernetesVersion string    `json:"kubernetesVersion,omitempty"`
	GatewayAPIVersion string    `json:"gatewayAPIVersion,omitempty"`
	GatewayAPIChannel string    `json:"gatewayAPIChannel,omitempty"`
	Start             time.Time `json:"start,omitzero"`
	End               time.Time `json:"end,omitzero"`
	// Incomplete lists why the run did not finish (interrupted, a suite could not start, ...).
	// A non-empty list makes the gate exit 2.
	Incomplete []string `json:"incomplete,omitempty"`
}

// Merge fills r's empty fields from o and widens the start/end window; it is how metadata from
// several suites, a run entry and command-line flags combine.
func (r *Run) Merge(o Run) {
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&r.GatecheckVersion, o.GatecheckVersion)
	fill(&r.Implementation, o.Implementation)
	fill(&r.GatewayClass, o.GatewayClass)
	fill(&r.ClusterProvider, o.ClusterProvider)
	fill(&r.ReachMode, o.ReachMode)
	fill(&r.KubernetesVersion, o.KubernetesVersion)
	fill(&r.GatewayAPIVersion, o.GatewayAPIVersion)
	fill(&r.GatewayAPIChannel, o.GatewayAPIChannel)
	if !o.Start.IsZero() && (r.Start.IsZero() || o.Start.Before(r.Start)) {
		r.Start = o.Start
	}
	if o.End.After(r.End) {
		r.End = o.End
	}
	r.Incomplete = append(r.Incomplete, o.Incomplete...)
}

// FillRunFromConformance fills the run's Gateway API version, channel and implementation from
// the ConformanceReport where they are still empty: the upstream suite knows them for certain.
func (r *Report) FillRunFromConformance() {
	if r.Conformance == nil {
		return
	}
	c := r.Conformance.Report
	impl := ""
	if c.Project != "" {
		impl = strings.TrimSpace(c.Project + " " + c.Version)
	}
	r.Run.Merge(Run{GatewayAPIVersion: c.GatewayAPIVersion, GatewayAPIChannel: c.GatewayAPIChannel, Implementation: impl})
}

// Suite is one Ginkgo suite (one RunSpecs call).
type Suite struct {
	Name   string   `json:"name"`
	Path   string   `json:"path,omitempty"`
	Labels []string `json:"labels,omitempty"`
	// Succeeded is Ginkgo's own verdict for the suite, which also covers failures outside specs.
	Succeeded bool `json:"succeeded"`
	// FailureReasons are Ginkgo's suite-level failure reasons (interrupted, focused specs, ...).
	// NotClaimed lists the features whose absence from the GatewayClass's claims skipped the
	// whole suite in its BeforeSuite (its specs are then OutcomeNotClaimed): not a failure.
	FailureReasons  []string  `json:"failureReasons,omitempty"`
	NotClaimed      []string  `json:"notClaimed,omitempty"`
	Start           time.Time `json:"start,omitzero"`
	End             time.Time `json:"end,omitzero"`
	DurationSeconds float64   `json:"durationSeconds"`
	Specs           []Spec    `json:"specs"`
}

// Counts tallies the suite's specs by outcome.
func (s Suite) Counts() map[Outcome]int {
	c := map[Outcome]int{}
	for _, sp := range s.Specs {
		c[sp.Outcome]++
	}
	return c
}

// Outcome is how a spec ended. The values are Ginkgo's spec states.
type Outcome string

const (
	OutcomePassed      Outcome = "passed"
	OutcomeFailed      Outcome = "failed"
	OutcomeSkipped     Outcome = "skipped"
	OutcomePending     Outcome = "pending"
	OutcomePanicked    Outcome = "panicked"
	OutcomeTimedOut    Outcome = "timedout"
	OutcomeInterrupted Outcome = "interrupted"
	OutcomeAborted     Outcome = "aborted"
	OutcomeUnknown     Outcome = "unknown"
	// OutcomeNotClaimed is gatecheck's own: a spec skipped because the GatewayClass does not
	// claim a feature it needs (Ginkgo says "skipped"). The implementation is not judged on a
	// feature it does not claim, so this is never a failure and never "could not run".
	OutcomeNotClaimed Outcome = "notClaimed"
)

// Failed reports whether the outcome is a verdict failure: the spec ran and found a problem.
func (o Outcome) Failed() bool { return o == OutcomeFailed || o == OutcomeTimedOut }

// Broken reports whether the outcome means the spec could not run to a verdict.
func (o Outcome) Broken() bool {
	return o == OutcomePanicked || o == OutcomeInterrupted || o == OutcomeAborted || o == OutcomeUnknown
}

// NotRun reports whether the spec was skipped (for any reason, not claimed included) or pending.
func (o Outcome) NotRun() bool {
	return o == OutcomeSkipped || o == OutcomePending || o == OutcomeNotClaimed
}

// Spec is one spec, or one suite-level node (BeforeSuite, ...) that failed.
type Spec struct {
	// Name is the container texts and the leaf text joined by spaces, as Ginkgo prints it.
	Name string `json:"name"`
	// Hierarchy is the container texts followed by the leaf text.
	Hierarchy       []string      `json:"hierarchy"`
	Labels          []string      `json:"labels,omitempty"`
	Location        string        `json:"location,omitempty"`
	NodeType        string        `json:"nodeType,omitempty"`
	Outcome         Outcome       `json:"outcome"`
	Start           time.Time     `json:"start,omitzero"`
	End             time.Time     `json:"end,omitzero"`
	DurationSeconds float64       `json:"durationSeconds"`
	Attempts        int           `json:"attempts,omitempty"`
	SkipReason      string        `json:"skipReason,omitempty"`
	NotClaimed      []string      `json:"notClaimed,omitempty"` // features not claimed, for OutcomeNotClaimed
	Failure         *Failure      `json:"failure,omitempty"`
	Logs            string        `json:"logs,omitempty"`
	Measurements    []Measurement `json:"measurements,omitempty"`
	// Notes are report entries that are not measurements, as name: text.
	Notes []Note `json:"notes,omitempty"`
}

// Failure is why a spec failed.
type Failure struct {
	Message  string `json:"message"`
	Location string `json:"location,omitempty"`
	// Node is the kind of node that failed (It, BeforeEach, ...).
	Node string `json:"node,omitempty"`
	// Panic is the forwarded panic value, if the spec panicked.
	Panic string `json:"panic,omitempty"`
}

// Note is a plain report entry.
type Note struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Conformance embeds the upstream ConformanceReport. Raw is the file exactly as the conformance
// suite wrote it, so it can be submitted unmodified; Report is its parsed form.
type Conformance struct {
	Raw    string                   `json:"raw"`
	Report confv1.ConformanceReport `json:"report"`
	// Partial is true for a report gatecheck built from the tests that finished before the
	// suite stopped (Raw starts with PartialConformanceMarker): never a pass, never submitted.
	Partial bool `json:"partial,omitempty"`
	// KnownFailures are the upstream tests the implementation's profile documents as failing
	// (conformance.knownFailures), each with why. A documented test that fails is reported as a
	// known failure and does not fail the gate; Raw is untouched and still counts it as failed.
	KnownFailures []KnownFailure `json:"knownFailures,omitempty"`
}

// KnownFailure is an upstream test an implementation is documented to fail, and why.
type KnownFailure struct {
	Test   string `json:"test"`
	Reason string `json:"reason"`
}

// KnownFailure returns why test is documented to fail, or "" when it is not.
func (c *Conformance) KnownFailure(test string) string {
	if c == nil {
		return ""
	}
	for _, k := range c.KnownFailures {
		if k.Test == test {
			return k.Reason
		}
	}
	return ""
}

// GateResult is the gate's verdict on the report.
type GateResult struct {
	File    string   `json:"file,omitempty"`
	Code    int      `json:"exitCode"`
	Reasons []string `json:"reasons,omitempty"`
}

// Validate checks what renderers and the gate rely on.
func (r *Report) Validate() error {
	if r.SchemaVersion != SchemaVersion {
		return fmt.Errorf("report schemaVersion %q: want %q", r.SchemaVersion, SchemaVersion)
	}
	if r.Upstream != nil {
		if err := r.Upstream.Validate(); err != nil {
			return err
		}
	}
	for i, s := range r.Suites {
		for j, sp := range s.Specs {
			switch sp.Outcome {
			case OutcomePassed, OutcomeFailed, OutcomeSkipped, OutcomePending, OutcomePanicked,
				OutcomeTimedOut, OutcomeInterrupted, OutcomeAborted, OutcomeUnknown, OutcomeNotClaimed:
			default:
				return fmt.Errorf("suites[%d] %q specs[%d] %q: outcome %q is not one of passed, failed, skipped, pending, panicked, timedout, interrupted, aborted, unknown, notClaimed",
					i, s.Name, j, sp.Name, sp.Outcome)
			}
			for k, m := range sp.Measurements {
				if err := m.Validate(); err != nil {
					return fmt.Errorf("suites[%d] %q specs[%d] %q measurements[%d]: %w", i, s.Name, j, sp.Name, k, err)
				}
			}
		}
	}
	return nil
}

// MarshalIndent is the report's canonical JSON: two-space indented, fields in declaration order.
func (r *Report) MarshalIndent() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
