package model

import (
	"fmt"
	"time"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
)

// Upstream is the upstream conformance suite's record of each test, streamed as each test
// ended (see suites/conformance), so that a run stopped in the middle of the suite still
// says which tests passed, which failed, which were running and which never started.
type Upstream struct {
	// Partial is true when the suite stopped before its end (interrupted, crashed, killed):
	// tests are missing their results and the ConformanceReport, if any, is partial.
	Partial bool `json:"partial"`
	// Reason says why the record is partial.
	Reason string `json:"reason,omitempty"`
	// Tests are every test of the suite's plan, in the order the suite runs them.
	Tests []UpstreamTest `json:"tests"`
}

// UpstreamResult is how one upstream test ended, or that it did not.
type UpstreamResult string

const (
	UpstreamPassed  UpstreamResult = "passed"
	UpstreamFailed  UpstreamResult = "failed"
	UpstreamSkipped UpstreamResult = "skipped"
	// UpstreamRunning: the test started and never ended (it was running when the suite stopped).
	UpstreamRunning UpstreamResult = "running"
	// UpstreamNotStarted: the suite stopped (or, with failFast, gave up) before this test.
	UpstreamNotStarted UpstreamResult = "notStarted"
)

// UpstreamTest is one upstream ConformanceTest and its result.
type UpstreamTest struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Result      UpstreamResult `json:"result"`
	// Profiles are the conformance profiles of this run that count the test, each with the
	// support level (core or extended) the test has in it.
	Profiles    []UpstreamProfile `json:"profiles,omitempty"`
	Features    []string          `json:"features,omitempty"`
	Provisional bool              `json:"provisional,omitempty"`
	Start       time.Time         `json:"start,omitzero"`
	// DurationSeconds is from the test's start to the end of its cleanup.
	DurationSeconds float64 `json:"durationSeconds"`
	// SkipReason says why the test was skipped, or for a test that never started why it
	// would have been skipped (empty: it would have run).
	SkipReason string `json:"skipReason,omitempty"`
	// Message is the failed test's output, when the suite's log had it.
	Message string `json:"message,omitempty"`
}

// UpstreamProfile is a conformance profile a test counts for, and its level there.
type UpstreamProfile struct {
	Name string `json:"name"`
	// Level is "core" or "extended".
	Level string `json:"level"`
}

// Counts tallies the tests by result.
func (u *Upstream) Counts() map[UpstreamResult]int {
	c := map[UpstreamResult]int{}
	for _, t := range u.Tests {
		c[t.Result]++
	}
	return c
}

// Validate checks the results are ones renderers and the gate know.
func (u *Upstream) Validate() error {
	for i, t := range u.Tests {
		switch t.Result {
		case UpstreamPassed, UpstreamFailed, UpstreamSkipped, UpstreamRunning, UpstreamNotStarted:
		default:
			return fmt.Errorf("upstream.tests[%d] %q: result %q is not one of passed, failed, skipped, running, notStarted", i, t.Name, t.Result)
		}
		for j, p := range t.Profiles {
			if p.Level != "core" && p.Level != "extended" {
				return fmt.Errorf("upstream.tests[%d] %q profiles[%d] %q: level %q is not core or extended", i, t.Name, j, p.Name, p.Level)
			}
		}
	}
	return nil
}

// PartialConformanceMarker starts the first line of a ConformanceReport that gatecheck built
// from the events of a suite that stopped early. Such a report is never a pass and must not
// be submitted; reading it back (ingest.ParseConformance) sets Conformance.Partial.
const PartialConformanceMarker = "# gatecheck: PARTIAL ConformanceReport"

// UpstreamEventsEnv names the events file to the upstream suite wrapper (suites/conformance).
const UpstreamEventsEnv = "GATECHECK_CONFORMANCE_EVENTS"

// The events file: the upstream suite wrapper (suites/conformance) appends one JSON object
// per line, each written with one write call as it happens, so whatever ends the process the
// file holds every event up to then (at worst a truncated last line).
//
//	{"event":"plan", "time", "plan": {...}}    once, before the suite's Setup
//	{"event":"start","time","test"}            when a test's body starts (before its manifests)
//	{"event":"end",  "time","test","result","start","elapsedSeconds","features","provisional","skipReason"}
//	{"event":"done", "time","reportWritten","failed"}  when TestConformance ends
const (
	UpstreamEventPlan  = "plan"
	UpstreamEventStart = "start"
	UpstreamEventEnd   = "end"
	UpstreamEventDone  = "done"
)

// UpstreamEvent is one line of the events file.
type UpstreamEvent struct {
	Event string        `json:"event"`
	Time  time.Time     `json:"time"`
	Plan  *UpstreamPlan `json:"plan,omitempty"`

	Test string `json:"test,omitempty"`
	// Result of an end event: "pass", "fail" or "skip".
	Result         string    `json:"result,omitempty"`
	Start          time.Time `json:"start,omitzero"`
	ElapsedSeconds float64   `json:"elapsedSeconds,omitempty"`
	Features       []string  `json:"features,omitempty"`
	Provisional    bool      `json:"provisional,omitempty"`
	SkipReason     string    `json:"skipReason,omitempty"`

	// ReportWritten and Failed belong to the done event.
	ReportWritten bool `json:"reportWritten,omitempty"`
	Failed        bool `json:"failed,omitempty"`
}

// Results of end events.
const (
	UpstreamEventPass = "pass"
	UpstreamEventFail = "fail"
	UpstreamEventSkip = "skip"
)

// UpstreamPlan is what the suite is about to do, with what a ConformanceReport needs that the
// per-test events do not carry.
type UpstreamPlan struct {
	Mode              string                `json:"mode,omitempty"`
	Implementation    confv1.Implementation `json:"implementation"`
	GatewayAPIVersion string                `json:"gatewayAPIVersion,omitempty"`
	SupportedFeatures []string              `json:"supportedFeatures,omitempty"`
	Profiles          []UpstreamPlanProfile `json:"profiles,omitempty"`
	Tests             []UpstreamPlanTest    `json:"tests"`
}

// UpstreamPlanProfile is a profile of the run with its extended features split as the
// upstream report lists them.
type UpstreamPlanProfile struct {
	Name                        string   `json:"name"`
	ExtendedSupportedFeatures   []string `json:"extendedSupportedFeatures,omitempty"`
	ExtendedUnsupportedFeatures []string `json:"extendedUnsupportedFeatures,omitempty"`
}

// UpstreamPlanTest is one test as the suite classifies it before running it.
type UpstreamPlanTest struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Features    []string          `json:"features,omitempty"`
	Provisional bool              `json:"provisional,omitempty"`
	Profiles    []UpstreamProfile `json:"profiles,omitempty"`
	// WillRun is false when the suite skips the test before its body (unsupported feature,
	// --skip-tests, --run-test naming another test); SkipReason then says why.
	WillRun    bool   `json:"willRun"`
	SkipReason string `json:"skipReason,omitempty"`
	// Initial is the upstream suite's own classification before the test runs (SUCCEEDED,
	// SKIPPED, NOT_SUPPORTED, PROVISIONAL_SKIPPED), which decides how the test's end counts
	// in the ConformanceReport.
	Initial string `json:"initial"`
}
