package model

import (
	"fmt"
	"math"
	"reflect"
	"strings"
)

// EntryPrefix starts the name of every Ginkgo report entry that carries a Measurement; the rest
// of the name is the Kind. Entries with other names become Notes.
const EntryPrefix = "gatecheck.measurement/"

// RunEntryName names the report entry that carries Run metadata (add it in BeforeSuite).
const RunEntryName = "gatecheck.run"

// Kind says which of a Measurement's payload fields is set.
type Kind string

const (
	KindWeight      Kind = "weight"
	KindLatency     Kind = "latency"
	KindPropagation Kind = "propagation"
	KindSidecar     Kind = "sidecar"
	KindMigration   Kind = "migration"
)

// Decision is a measurement's verdict.
type Decision string

const (
	DecisionPass         Decision = "pass"
	DecisionFail         Decision = "fail"
	DecisionInconclusive Decision = "inconclusive"
)

// Measurement is one typed result attached to a spec. Exactly one payload field is set, the one
// named by Kind.
type Measurement struct {
	Kind  Kind   `json:"kind"`
	Title string `json:"title"`
	// Warnings say what Entry had to change to make the value encodable (NaN, Inf).
	Warnings    []string             `json:"warnings,omitempty"`
	Weight      *WeightVerdict       `json:"weight,omitempty"`
	Latency     *LatencyHistograms   `json:"latency,omitempty"`
	Propagation *Propagation         `json:"propagation,omitempty"`
	Sidecar     *SidecarTimelines    `json:"sidecar,omitempty"`
	Migration   *MigrationComparison `json:"migration,omitempty"`
}

// Value is a measurement payload.
type Value interface{ MeasurementKind() Kind }

var (
	_ Value = (*WeightVerdict)(nil)
	_ Value = (*LatencyHistograms)(nil)
	_ Value = (*Propagation)(nil)
	_ Value = (*SidecarTimelines)(nil)
	_ Value = (*MigrationComparison)(nil)
)

// New wraps v as a Measurement titled title. Non-finite floats, which JSON cannot carry (and
// which would make Ginkgo fail to write its whole report), are replaced by 0 in v itself, and
// each replacement is named in Warnings.
func New(title string, v Value) Measurement {
	m := Measurement{Kind: v.MeasurementKind(), Title: title}
	switch p := v.(type) {
	case *WeightVerdict:
		m.Weight = p
	case *LatencyHistograms:
		m.Latency = p
	case *Propagation:
		m.Propagation = p
	case *SidecarTimelines:
		m.Sidecar = p
	case *MigrationComparison:
		m.Migration = p
	}
	m.Warnings = append(m.Warnings, replaceNonFinite(reflect.ValueOf(&m).Elem(), "")...)
	return m
}

// Entry returns the arguments for Ginkgo's AddReportEntry, so a suite writes
//
//	AddReportEntry(model.Entry("split 80/20", verdict))
//
// or, to keep it off the console, name, v := model.Entry(...); AddReportEntry(name, v,
// ReportEntryVisibilityNever). The value JSON-encodes as a Measurement.
func Entry(title string, v Value) (string, any) {
	m := New(title, v)
	return EntryPrefix + string(m.Kind), m
}

// RunEntry returns AddReportEntry arguments that record run metadata in the suite's report.
func RunEntry(r Run) (string, any) { return RunEntryName, r }

// String is what Ginkgo prints for the entry on the console.
func (m Measurement) String() string {
	var d Decision
	var msg string
	switch {
	case m.Weight != nil:
		d, msg = m.Weight.Decision, fmt.Sprintf("n=%d p=%.3g %s", m.Weight.N, m.Weight.PValue, m.Weight.Message)
	case m.Latency != nil:
		d, msg = m.Latency.Decision, m.Latency.Message
	case m.Propagation != nil:
		d, msg = m.Propagation.Decision, m.Propagation.Message
	case m.Sidecar != nil:
		d, msg = m.Sidecar.Decision, m.Sidecar.Message
	case m.Migration != nil:
		d, msg = m.Migration.Decision, m.Migration.Message
	}
	return strings.TrimSpace(fmt.Sprintf("%s %q: %s %s", m.Kind, m.Title, d, msg))
}

// Decision is the payload's decision, empty when it has none.
func (m Measurement) Decision() Decision {
	switch {
	case m.Weight != nil:
		return m.Weight.Decision
	case m.Latency != nil:
		return m.Latency.Decision
	case m.Propagation != nil:
		return m.Propagation.Decision
	case m.Sidecar != nil:
		return m.Sidecar.Decision
	case m.Migration != nil:
		return m.Migration.Decision
	}
	return ""
}

// Validate checks that the payload named by Kind is the one present and is drawable.
func (m Measurement) Validate() error {
	set := 0
	for _, p := range []bool{m.Weight != nil, m.Latency != nil, m.Propagation != nil, m.Sidecar != nil, m.Migration != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("measurement %q (kind %q): %d payloads set; want exactly 1", m.Title, m.Kind, set)
	}
	var ok bool
	switch m.Kind {
	case KindWeight:
		ok = m.Weight != nil
	case KindLatency:
		ok = m.Latency != nil
	case KindPropagation:
		ok = m.Propagation != nil
	case KindSidecar:
		ok = m.Sidecar != nil
	case KindMigration:
		ok = m.Migration != nil
	default:
		return fmt.Errorf("measurement %q: kind %q is not one of weight, latency, propagation, sidecar, migration", m.Title, m.Kind)
	}
	if !ok {
		return fmt.Errorf("measurement %q: kind %q but its %q field is empty", m.Title, m.Kind, m.Kind)
	}
	if m.Weight != nil {
		for i, b := range m.Weight.Backends {
			if b.Count < 0 || b.Weight < 0 {
				return fmt.Errorf("measurement %q: weight.backends[%d] %q: negative count %d or weight %d", m.Title, i, b.Backend, b.Count, b.Weight)
			}
		}
	}
	if m.Latency != nil {
		for i, s := range m.Latency.Series {
			for j, b := range s.Buckets {
				if b.Count < 0 || b.UpperMs < b.LowerMs {
					return fmt.Errorf("measurement %q: latency.series[%d] %q buckets[%d]: count %d, range [%g, %g]; want count >= 0 and lowerMs <= upperMs",
						m.Title, i, s.Label, j, b.Count, b.LowerMs, b.UpperMs)
				}
			}
		}
	}
	if m.Sidecar != nil {
		for i, v := range m.Sidecar.Variants {
			for j, c := range v.Containers {
				for k, e := range c.Events {
					switch e.Kind {
					case EventStart, EventReady, EventSigterm, EventExit, EventRestart:
					default:
						return fmt.Errorf("measurement %q: sidecar.variants[%d] %q containers[%d] %q events[%d]: kind %q is not one of start, ready, sigterm, exit, restart",
							m.Title, i, v.Variant, j, c.Name, k, e.Kind)
					}
				}
			}
		}
	}
	return nil
}

// WeightVerdict is the report-side record of a traffic split test: how many requests each
// backend got against its declared weight, the confidence interval of each share and the test's
// decision. The suites convert their statistics into it.
type WeightVerdict struct {
	// N is the number of requests counted.
	N        int           `json:"n"`
	Backends []WeightShare `json:"backends"`
	// Tolerance is the allowed absolute deviation of a share (0.02 = 2 points).
	Tolerance float64 `json:"tolerance"`
	// Alpha is the test's significance level, Power its power at Tolerance.
	Alpha    float64  `json:"alpha"`
	Power    float64  `json:"power,omitempty"`
	PValue   float64  `json:"pValue"`
	Method   string   `json:"method,omitempty"`
	Decision Decision `json:"decision"`
	Message  string   `json:"message,omitempty"`
	// Hypotheses says what the verdict tested; Unit is what one observation is (request,
	// connection, RPC, flow); Delta the skew it is designed to catch (relative for shares
	// below it); AchievedAlpha its exact false-failure bound; ExpectedN and MaxN the units
	// it expects to use for a correct split and the most it can use.
	Hypotheses    string  `json:"hypotheses,omitempty"`
	Unit          string  `json:"unit,omitempty"`
	Delta         float64 `json:"delta,omitempty"`
	AchievedAlpha float64 `json:"achievedAlpha,omitempty"`
	ExpectedN     float64 `json:"expectedN,omitempty"`
	MaxN          int     `json:"maxN,omitempty"`
	// OC is the operating characteristic of the test per tested backend: the exact
	// probability of failing as a function of the backend's true share.
	OC []OperatingCurve `json:"oc,omitempty"`
	// Dependence, when set, is the finding that units were not split independently (e.g.
	// "split per connection, not per request: ..."), which decided the verdict.
	Dependence string `json:"dependence,omitempty"`
}

// OperatingCurve is the probability that a weight verdict fails as a function of one
// backend's true share, computed exactly from the rule the test runs. Exact is true when it
// is the whole verdict's (two positive backends); otherwise it is the backend's part of the
// test, and the verdict fails at least this often.
type OperatingCurve struct {
	Backend       string    `json:"backend"`
	DeclaredShare float64   `json:"declaredShare"`
	Exact         bool      `json:"exact"`
	Points        []OCPoint `json:"points"`
	// Marks are labelled points: "declared" (the false-failure rate), "skew down" and "skew
	// up" (the power), "nothing" (starved) and "double" (flooded).
	Marks []OCPoint `json:"marks,omitempty"`
}

// OCPoint is the operating characteristic at one true share: the probability of failing
// and the expected number of units used.
type OCPoint struct {
	Label     string  `json:"label,omitempty"`
	Share     float64 `json:"share"`
	Fail      float64 `json:"fail"`
	ExpectedN float64 `json:"expectedN"`
}

// WeightShare is one backend of a split.
type WeightShare struct {
	Backend string `json:"backend"`
	// Weight is the declared weight; DeclaredShare is Weight over the sum of weights.
	Weight        int32   `json:"weight"`
	DeclaredShare float64 `json:"declaredShare"`
	Count         int     `json:"count"`
	Share         float64 `json:"share"`
	// Lo and Hi bound the share's confidence interval at 1-Alpha.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

func (*WeightVerdict) MeasurementKind() Kind { return KindWeight }

// LatencyHistograms are latency distributions meant to be read side by side, such as
// "mirror isolation: baseline vs with slow mirror".
type LatencyHistograms struct {
	Series   []LatencyHistogram `json:"series"`
	Decision Decision           `json:"decision,omitempty"`
	Message  string             `json:"message,omitempty"`
}

// LatencyHistogram is one latency distribution in milliseconds.
type LatencyHistogram struct {
	Label   string   `json:"label"`
	Count   int64    `json:"count"`
	Buckets []Bucket `json:"buckets"`
	MinMs   float64  `json:"minMs"`
	MeanMs  float64  `json:"meanMs"`
	MaxMs   float64  `json:"maxMs"`
	P50Ms   float64  `json:"p50Ms"`
	P90Ms   float64  `json:"p90Ms"`
	P99Ms   float64  `json:"p99Ms"`
	P999Ms  float64  `json:"p999Ms"`
	// Errors counts requests that got no response or a non-2xx one; they are not in Buckets.
	Errors int64 `json:"errors,omitempty"`
}

// Bucket counts samples in [LowerMs, UpperMs).
type Bucket struct {
	LowerMs float64 `json:"lowerMs"`
	UpperMs float64 `json:"upperMs"`
	Count   int64   `json:"count"`
}

func (*LatencyHistograms) MeasurementKind() Kind { return KindLatency }

// Propagation holds route propagation delays: for each change, the time from the API write to
// the first request that saw it.
type Propagation struct {
	Series   []PropagationSeries `json:"series"`
	Decision Decision            `json:"decision,omitempty"`
	Message  string              `json:"message,omitempty"`
}

// PropagationSeries is one set of propagation samples.
type PropagationSeries struct {
	Label     string    `json:"label"`
	SamplesMs []float64 `json:"samplesMs"`
	// Errors counts probes that got a status other than the before/after ones.
	Errors int `json:"errors,omitempty"`
}

func (*Propagation) MeasurementKind() Kind { return KindPropagation }

// SidecarTimelines compare container lifecycles of one scenario in several Pod variants,
// typically "legacy" (sidecar as a regular container) and "native" (restartPolicy: Always init
// container).
type SidecarTimelines struct {
	Variants []SidecarTimeline `json:"variants"`
	Decision Decision          `json:"decision,omitempty"`
	Message  string            `json:"message,omitempty"`
}

// SidecarTimeline is the lifecycle of one Pod's containers.
type SidecarTimeline struct {
	Variant    string              `json:"variant"`
	Containers []ContainerTimeline `json:"containers"`
}

// ContainerTimeline is one container's events in time order.
type ContainerTimeline struct {
	Name string `json:"name"`
	// Role is init, sidecar or main.
	Role   string           `json:"role,omitempty"`
	Events []ContainerEvent `json:"events"`
}

// EventKind is a container lifecycle event.
type EventKind string

const (
	EventStart   EventKind = "start"
	EventReady   EventKind = "ready"
	EventSigterm EventKind = "sigterm"
	EventExit    EventKind = "exit"
	EventRestart EventKind = "restart"
)

// ContainerEvent happened TimeMs milliseconds after the timeline's origin (Pod creation).
type ContainerEvent struct {
	Kind   EventKind `json:"kind"`
	TimeMs float64   `json:"timeMs"`
	Detail string    `json:"detail,omitempty"`
}

func (*SidecarTimelines) MeasurementKind() Kind { return KindSidecar }

// replaceNonFinite zeroes NaN and Inf floats reachable from v and names each one it changed.
func replaceNonFinite(v reflect.Value, path string) []string {
	var out []string
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			out = append(out, replaceNonFinite(v.Elem(), path)...)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name == "" {
				name = f.Name
			}
			out = append(out, replaceNonFinite(v.Field(i), strings.TrimPrefix(path+"."+name, "."))...)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			out = append(out, replaceNonFinite(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			if v.CanSet() {
				v.SetFloat(0)
				out = append(out, fmt.Sprintf("%s was %v; replaced by 0", path, f))
			}
		}
	}
	return out
}

// MigrationComparison is the same requests sent through Ingresses and through the Gateway API
// objects that replace them (the migration suite): every request with both answers side by
// side, and the first request whose answers differ.
type MigrationComparison struct {
	Rows []MigrationRow `json:"rows"`
	// Differing counts the rows with a Diff; First is the index in Rows of the first (-1: none).
	Differing int      `json:"differing"`
	First     int      `json:"first"`
	Decision  Decision `json:"decision"`
	Message   string   `json:"message,omitempty"`
}

// MigrationRow is one request and both answers.
type MigrationRow struct {
	Request string `json:"request"`
	Ingress string `json:"ingress"`
	Gateway string `json:"gateway"`
	// Diff says how the answers differ; empty when they agree.
	Diff string `json:"diff,omitempty"`
}

func (*MigrationComparison) MeasurementKind() Kind { return KindMigration }
