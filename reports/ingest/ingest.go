package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/reports/model"
)

// ParseError is a results file that could not be read, with the position of the problem when
// the decoder knows it.
type ParseError struct {
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	Err          error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ReadFile reads a results file: a saved gatecheck report (report.json) or a Ginkgo JSON report.
func ReadFile(path string) (*model.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results file: %w", err)
	}
	return Parse(path, data)
}

// Parse reads data, named name in errors, as a saved gatecheck report (an object with
// schemaVersion) or a Ginkgo JSON report (an array of suite reports, or one).
func Parse(name string, data []byte) (*model.Report, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &ParseError{File: name, Err: errors.New("file is empty; want a gatecheck report or a Ginkgo JSON report")}
	}
	// A syntax pass first, so that truncation and garbage get a line and column.
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, jsonError(name, data, err)
	}
	switch p := probe.(type) {
	case []any:
		reps, err := decodeGinkgo(name, data, true)
		if err != nil {
			return nil, err
		}
		return fromGinkgo(name, reps)
	case map[string]any:
		if _, ok := p["schemaVersion"]; ok {
			return parseModel(name, data)
		}
		if _, ok := p["SuiteDescription"]; ok {
			reps, err := decodeGinkgo(name, data, false)
			if err != nil {
				return nil, err
			}
			return fromGinkgo(name, reps)
		}
		if _, ok := p["SpecReports"]; ok {
			reps, err := decodeGinkgo(name, data, false)
			if err != nil {
				return nil, err
			}
			return fromGinkgo(name, reps)
		}
	}
	return nil, &ParseError{File: name, Err: errors.New("neither a gatecheck report (an object with schemaVersion) nor a Ginkgo JSON report (an array of objects with SuiteDescription)")}
}

func parseModel(name string, data []byte) (*model.Report, error) {
	var r model.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, jsonError(name, data, err)
	}
	if err := r.Validate(); err != nil {
		return nil, &ParseError{File: name, Err: err}
	}
	if r.Conformance != nil && r.Conformance.Raw != "" {
		// The parsed form is derived from Raw, which is what gets submitted; keep them in step.
		c, err := ParseConformance(name+": conformance.raw", []byte(r.Conformance.Raw))
		if err != nil {
			return nil, err
		}
		c.KnownFailures = r.Conformance.KnownFailures // the profile's, not in Raw
		r.Conformance = c
	}
	return &r, nil
}

// entryShape is just enough of a Ginkgo report to find the report entries: Ginkgo's own decoder
// fails the whole file on an entry whose AsJSON is not JSON, without saying where.
type entryShape struct {
	SuiteDescription string
	SpecReports      []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		ReportEntries           []struct {
			Name  string
			Value struct{ AsJSON string }
		}
	}
}

func checkEntries(name string, data []byte, array bool) error {
	var suites []entryShape
	var err error
	if array {
		err = json.Unmarshal(data, &suites)
	} else {
		var one entryShape
		err = json.Unmarshal(data, &one)
		suites = []entryShape{one}
	}
	if err != nil {
		return jsonError(name, data, fmt.Errorf("decode Ginkgo report: %w", err))
	}
	for _, s := range suites {
		for j, sp := range s.SpecReports {
			for k, e := range sp.ReportEntries {
				if !json.Valid([]byte(e.Value.AsJSON)) {
					text := strings.Join(append(slices.Clone(sp.ContainerHierarchyTexts), sp.LeafNodeText), " ")
					return &ParseError{File: name, Err: fmt.Errorf("suite %q spec %d %q: report entry %d %q: Value.AsJSON is not valid JSON: %.80q",
						s.SuiteDescription, j, text, k, e.Name, e.Value.AsJSON)}
				}
			}
		}
	}
	return nil
}

func decodeGinkgo(name string, data []byte, array bool) ([]types.Report, error) {
	if err := checkEntries(name, data, array); err != nil {
		return nil, err
	}
	var reps []types.Report
	var err error
	if array {
		err = json.Unmarshal(data, &reps)
	} else {
		var one types.Report
		err = json.Unmarshal(data, &one)
		reps = []types.Report{one}
	}
	if err != nil {
		return nil, jsonError(name, data, fmt.Errorf("decode Ginkgo report: %w", err))
	}
	return reps, nil
}

// jsonError turns a decoder error into a ParseError with the line and column it points at.
func jsonError(name string, data []byte, err error) error {
	off := int64(-1)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included; point at that byte.
		off = max(syn.Offset-1, 0)
		if syn.Offset >= int64(len(bytes.TrimRight(data, " \t\r\n"))) {
			err = fmt.Errorf("file ends early (truncated?): %w", err)
		}
	case errors.As(err, &typ):
		off = typ.Offset
	}
	pe := &ParseError{File: name, Err: err}
	if off >= 0 {
		pe.Line, pe.Column = position(data, off)
	}
	return pe
}

// position is the 1-based line and column of byte offset off.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// FromGinkgo builds a report from Ginkgo suite reports, as a ReportAfterSuite or a saved
// --json-report holds them.
func FromGinkgo(reps []types.Report) (*model.Report, error) { return fromGinkgo("ginkgo report", reps) }

func fromGinkgo(name string, reps []types.Report) (*model.Report, error) {
	out := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{}}
	for i, gr := range reps {
		s := model.Suite{
			Name:            gr.SuiteDescription,
			Path:            gr.SuitePath,
			Labels:          nilIfEmpty(gr.SuiteLabels),
			Succeeded:       gr.SuiteSucceeded,
			FailureReasons:  gr.SpecialSuiteFailureReasons,
			Start:           gr.StartTime.UTC(),
			End:             gr.EndTime.UTC(),
			DurationSeconds: gr.RunTime.Seconds(),
			Specs:           []model.Spec{},
		}
		if s.Name == "" {
			s.Name = fmt.Sprintf("suite %d", i+1)
		}
		out.Run.Merge(model.Run{Start: s.Start, End: s.End})
		var suiteSkip *model.Spec // BeforeSuite, when it skipped the suite
		for j, sr := range gr.SpecReports {
			suiteLevel := sr.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes)
			sp, run, err := spec(sr)
			if err != nil {
				return nil, &ParseError{File: name, Err: fmt.Errorf("suite %q spec %d %q: %w", s.Name, j, sr.FullText(), err)}
			}
			if run != nil {
				out.Run.Merge(*run)
			}
			if suiteLevel && sp.Outcome.NotRun() {
				suiteSkip = &sp
			}
			// Suite-level nodes are plumbing; they matter only when they fail or carry results.
			if suiteLevel && !sp.Outcome.Failed() && !sp.Outcome.Broken() && len(sp.Measurements) == 0 {
				continue
			}
			s.Specs = append(s.Specs, sp)
		}
		if suiteSkip != nil {
			skippedInBeforeSuite(&s, *suiteSkip, gr.SuiteConfig.LabelFilter)
		}
		if slices.ContainsFunc(gr.SpecialSuiteFailureReasons, func(r string) bool {
			return strings.Contains(strings.ToLower(r), "interrupt")
		}) {
			out.Run.Incomplete = append(out.Run.Incomplete, fmt.Sprintf("suite %q: %s", s.Name, strings.Join(gr.SpecialSuiteFailureReasons, "; ")))
		}
		out.Suites = append(out.Suites, s)
	}
	return out, nil
}

// suiteSkippedReason is Ginkgo's suite failure reason for a Skip in BeforeSuite.
const suiteSkippedReason = "Suite skipped in BeforeSuite"

// skippedInBeforeSuite gives the specs a BeforeSuite skip left without a reason the skip's
// reason. When the skip was for features the GatewayClass does not claim (a NotClaimed entry),
// they become OutcomeNotClaimed and Ginkgo's "Suite skipped in BeforeSuite" is no longer a
// suite failure: the implementation is not judged on what it does not claim. Any other skip
// (no cluster, ...) keeps Ginkgo's reason, which the gate reads as "could not run". Only the
// specs the suite's label filter selected are touched: the one binary for all suites reports
// every other suite's specs as skipped too.
func skippedInBeforeSuite(s *model.Suite, before model.Spec, labelFilter string) {
	selected := func([]string) bool { return true }
	if f, err := types.ParseLabelFilter(labelFilter); err == nil && strings.TrimSpace(labelFilter) != "" {
		selected = f
	}
	notClaimed := before.Outcome == model.OutcomeNotClaimed
	for i := range s.Specs {
		sp := &s.Specs[i]
		if sp.Outcome != model.OutcomeSkipped || sp.SkipReason != "" || (sp.NodeType != "" && sp.NodeType != "It") || !selected(sp.Labels) {
			continue
		}
		sp.SkipReason = before.SkipReason
		if notClaimed {
			sp.Outcome, sp.NotClaimed = model.OutcomeNotClaimed, before.NotClaimed
		}
	}
	if notClaimed {
		s.NotClaimed = before.NotClaimed
		s.FailureReasons = slices.DeleteFunc(slices.Clone(s.FailureReasons), func(r string) bool { return r == suiteSkippedReason })
		if len(s.FailureReasons) == 0 {
			s.FailureReasons = nil
		}
	}
}

// spec converts one spec report; run is the metadata it carried, if any.
func spec(sr types.SpecReport) (model.Spec, *model.Run, error) {
	hier := append(slices.Clone(sr.ContainerHierarchyTexts), sr.LeafNodeText)
	if sr.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes) {
		hier = []string{"[" + sr.LeafNodeType.String() + "]"}
	}
	sp := model.Spec{
		Name:            strings.Join(hier, " "),
		Hierarchy:       hier,
		Labels:          sr.Labels(),
		NodeType:        sr.LeafNodeType.String(),
		Outcome:         outcome(sr.State),
		Start:           sr.StartTime.UTC(),
		End:             sr.EndTime.UTC(),
		DurationSeconds: sr.RunTime.Seconds(),
		Attempts:        sr.NumAttempts,
		Logs:            plain(strings.TrimRight(sr.CapturedGinkgoWriterOutput+sr.CapturedStdOutErr, "\n")),
	}
	if sr.LeafNodeLocation.FileName != "" {
		sp.Location = fmt.Sprintf("%s:%d", sr.LeafNodeLocation.FileName, sr.LeafNodeLocation.LineNumber)
	}
	sp.Labels = nilIfEmpty(sp.Labels)
	switch {
	case sr.State == types.SpecStateSkipped:
		sp.SkipReason = plain(sr.Failure.Message)
	case sr.State == types.SpecStatePending:
		sp.SkipReason = "pending"
	case sr.State.Is(types.SpecStateFailureStates):
		f := &model.Failure{
			Message: plain(sr.Failure.Message),
			Node:    sr.Failure.FailureNodeType.String(),
			Panic:   sr.Failure.ForwardedPanic,
		}
		if sr.Failure.FailureNodeType == types.NodeTypeInvalid {
			f.Node = ""
		}
		if loc := sr.Failure.Location; loc.FileName != "" {
			f.Location = fmt.Sprintf("%s:%d", loc.FileName, loc.LineNumber)
		}
		for _, af := range sr.AdditionalFailures {
			f.Message += fmt.Sprintf("\n\nadditional failure (%s): %s", af.State, plain(af.Failure.Message))
		}
		sp.Failure = f
	}
	var run *model.Run
	for k, e := range sr.ReportEntries {
		switch {
		case strings.HasPrefix(e.Name, model.EntryPrefix):
			var m model.Measurement
			if err := decodeEntry(e, &m); err != nil {
				return sp, nil, fmt.Errorf("report entry %d %q: decode measurement: %w", k, e.Name, err)
			}
			if want := model.Kind(strings.TrimPrefix(e.Name, model.EntryPrefix)); m.Kind != want {
				return sp, nil, fmt.Errorf("report entry %d %q: measurement kind %q; want %q as the entry name says", k, e.Name, m.Kind, want)
			}
			if err := m.Validate(); err != nil {
				return sp, nil, fmt.Errorf("report entry %d %q: %w", k, e.Name, err)
			}
			sp.Measurements = append(sp.Measurements, m)
		case e.Name == model.NotClaimedEntryName && sr.State == types.SpecStateSkipped:
			var nc model.NotClaimed
			if err := decodeEntry(e, &nc); err != nil {
				return sp, nil, fmt.Errorf("report entry %d %q: decode not-claimed features: %w", k, e.Name, err)
			}
			if len(nc.Features) == 0 {
				return sp, nil, fmt.Errorf("report entry %d %q: lists no features", k, e.Name)
			}
			sp.Outcome, sp.NotClaimed = model.OutcomeNotClaimed, nc.Features
		case e.Name == model.RunEntryName:
			var r model.Run
			if err := decodeEntry(e, &r); err != nil {
				return sp, nil, fmt.Errorf("report entry %d %q: decode run metadata: %w", k, e.Name, err)
			}
			run = &r
		default:
			sp.Notes = append(sp.Notes, model.Note{Name: e.Name, Value: e.StringRepresentation()})
		}
	}
	return sp, run, nil
}

// ansi matches terminal colour and cursor sequences, which Ginkgo and Gomega output can carry.
var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// plain strips terminal escape sequences: the report is read in browsers and CI systems.
func plain(s string) string { return ansi.ReplaceAllString(s, "") }

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// decodeEntry decodes an entry's value into v. Entries read from a JSON report carry AsJSON; in
// process (a ReportAfterSuite) only the raw value is set.
func decodeEntry(e types.ReportEntry, v any) error {
	data := []byte(e.Value.AsJSON)
	if len(data) == 0 {
		var err error
		if data, err = json.Marshal(e.GetRawValue()); err != nil {
			return err
		}
	}
	return json.Unmarshal(data, v)
}

func outcome(s types.SpecState) model.Outcome {
	switch s {
	case types.SpecStatePassed:
		return model.OutcomePassed
	case types.SpecStateFailed:
		return model.OutcomeFailed
	case types.SpecStateSkipped:
		return model.OutcomeSkipped
	case types.SpecStatePending:
		return model.OutcomePending
	case types.SpecStatePanicked:
		return model.OutcomePanicked
	case types.SpecStateTimedout:
		return model.OutcomeTimedOut
	case types.SpecStateInterrupted:
		return model.OutcomeInterrupted
	case types.SpecStateAborted:
		return model.OutcomeAborted
	}
	return model.OutcomeUnknown
}

// ReadConformanceFile reads the upstream ConformanceReport YAML at path.
func ReadConformanceFile(path string) (*model.Conformance, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read conformance report: %w", err)
	}
	return ParseConformance(path, data)
}

// ParseConformance parses the upstream ConformanceReport YAML and keeps its bytes as they are.
func ParseConformance(name string, data []byte) (*model.Conformance, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ParseError{File: name, Err: errors.New("conformance report is empty")}
	}
	var cr confv1.ConformanceReport
	if err := yaml.Unmarshal(data, &cr); err != nil {
		return nil, &ParseError{File: name, Err: fmt.Errorf("decode ConformanceReport YAML: %w", err)}
	}
	if cr.Kind != "ConformanceReport" {
		return nil, &ParseError{File: name, Err: fmt.Errorf("kind %q; want ConformanceReport (apiVersion %s)", cr.Kind, confv1.GroupVersion)}
	}
	partial := bytes.HasPrefix(data, []byte(model.PartialConformanceMarker))
	return &model.Conformance{Raw: string(data), Report: cr, Partial: partial}, nil
}

// Combine merges reports of separate suite runs into one: suites are concatenated, run metadata
// merged, and at most one may carry a ConformanceReport and one the upstream per-test record.
func Combine(reps ...*model.Report) (*model.Report, error) {
	out := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{}}
	for _, r := range reps {
		out.Run.Merge(r.Run)
		out.Suites = append(out.Suites, r.Suites...)
		if r.Conformance != nil {
			if out.Conformance != nil {
				return nil, errors.New("combine reports: more than one carries a ConformanceReport")
			}
			out.Conformance = r.Conformance
		}
		if r.Upstream != nil {
			if out.Upstream != nil {
				return nil, errors.New("combine reports: more than one carries the upstream suite's per-test record")
			}
			out.Upstream = r.Upstream
		}
	}
	out.FillRunFromConformance()
	return out, nil
}
