package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/reports/model"
)

// ErrNoPlan is an events file without its plan line: the suite stopped before its Setup, so
// nothing is known about its tests.
var ErrNoPlan = errors.New("no plan event (the suite stopped before it planned its tests)")

// ReadConformanceEvents reads the events file the upstream suite wrapper (suites/conformance)
// streams, and returns every planned test with its result, and the plan. A last line cut short
// (the process died while writing it) is ignored and named in the record's Reason; any other
// bad line is an error naming the file and line. Without a done event the record is partial.
func ReadConformanceEvents(path string) (*model.Upstream, *model.UpstreamPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read conformance events: %w", err)
	}
	return ParseConformanceEvents(path, data)
}

// ParseConformanceEvents is ReadConformanceEvents on bytes; name is used in errors.
func ParseConformanceEvents(name string, data []byte) (*model.Upstream, *model.UpstreamPlan, error) {
	lines := bytes.Split(data, []byte("\n"))
	var (
		plan      *model.UpstreamPlan
		u         = &model.Upstream{Tests: []model.UpstreamTest{}}
		index     = map[string]int{}
		done      bool
		truncated string
	)
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev model.UpstreamEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			if i == len(lines)-1 {
				// No newline after it: the writer was stopped mid-line.
				truncated = fmt.Sprintf("%s:%d: last event cut short (the suite died while writing it), ignored", name, i+1)
				break
			}
			return nil, nil, &ParseError{File: name, Line: i + 1, Column: 1, Err: fmt.Errorf("event: %w", err)}
		}
		at := func(err error) error { return &ParseError{File: name, Line: i + 1, Column: 1, Err: err} }
		switch ev.Event {
		case model.UpstreamEventPlan:
			if plan != nil {
				return nil, nil, at(errors.New("second plan event (two suite runs appended to one file?)"))
			}
			if ev.Plan == nil {
				return nil, nil, at(errors.New("plan event without a plan"))
			}
			plan = ev.Plan
			for _, pt := range plan.Tests {
				if _, dup := index[pt.Name]; dup {
					return nil, nil, at(fmt.Errorf("plan lists test %q twice", pt.Name))
				}
				index[pt.Name] = len(u.Tests)
				t := model.UpstreamTest{Name: pt.Name, Description: pt.Description, Result: model.UpstreamNotStarted,
					Profiles: pt.Profiles, Features: pt.Features, Provisional: pt.Provisional}
				if !pt.WillRun {
					t.SkipReason = pt.SkipReason
				}
				u.Tests = append(u.Tests, t)
			}
		case model.UpstreamEventStart, model.UpstreamEventEnd:
			if plan == nil {
				return nil, nil, at(fmt.Errorf("%s event for %q before the plan event", ev.Event, ev.Test))
			}
			k, ok := index[ev.Test]
			if !ok {
				return nil, nil, at(fmt.Errorf("%s event for test %q, which is not in the plan", ev.Event, ev.Test))
			}
			t := &u.Tests[k]
			if ev.Event == model.UpstreamEventStart {
				t.Result, t.Start = model.UpstreamRunning, ev.Time
				continue
			}
			switch ev.Result {
			case model.UpstreamEventPass:
				t.Result = model.UpstreamPassed
			case model.UpstreamEventFail:
				t.Result = model.UpstreamFailed
			case model.UpstreamEventSkip:
				t.Result = model.UpstreamSkipped
			default:
				return nil, nil, at(fmt.Errorf("end event for %q: result %q is not pass, fail or skip", ev.Test, ev.Result))
			}
			if !ev.Start.IsZero() {
				t.Start = ev.Start
			}
			t.DurationSeconds = ev.ElapsedSeconds
			if ev.SkipReason != "" {
				t.SkipReason = ev.SkipReason
			}
		case model.UpstreamEventDone:
			done = true
		default:
			return nil, nil, at(fmt.Errorf("unknown event %q (want plan, start, end or done)", ev.Event))
		}
	}
	if plan == nil {
		return nil, nil, &ParseError{File: name, Err: ErrNoPlan}
	}
	var why []string
	if !done {
		u.Partial = true
		c := u.Counts()
		finished := c[model.UpstreamPassed] + c[model.UpstreamFailed] + c[model.UpstreamSkipped]
		why = append(why, fmt.Sprintf("the upstream suite stopped before its end: %d of %d tests finished, %d running, %d never started",
			finished, len(u.Tests), c[model.UpstreamRunning], c[model.UpstreamNotStarted]))
	}
	if truncated != "" {
		why = append(why, truncated)
	}
	u.Reason = strings.Join(why, "; ")
	return u, plan, nil
}

// PartialConformance builds the ConformanceReport the upstream suite would have written from the
// tests that finished, the way its suite.Report does (v1.6.3: results counted per profile and
// level from each test's initial classification and end, provisional tests apart), marked
// partial: Raw starts with model.PartialConformanceMarker and each profile's summary says how
// many tests finished. channel is the installed Gateway API channel, which the plan lacks.
func PartialConformance(plan *model.UpstreamPlan, u *model.Upstream, channel string, now time.Time) (*model.Conformance, error) {
	if plan == nil || u == nil {
		return nil, errors.New("partial conformance report: no plan")
	}
	initial := map[string]model.UpstreamPlanTest{}
	for _, pt := range plan.Tests {
		initial[pt.Name] = pt
	}
	reports := map[string]*confv1.ProfileReport{}
	var provisionalPassed []string
	ended := slices.DeleteFunc(slices.Clone(u.Tests), func(t model.UpstreamTest) bool {
		return t.Result != model.UpstreamPassed && t.Result != model.UpstreamFailed && t.Result != model.UpstreamSkipped
	})
	slices.SortFunc(ended, func(a, b model.UpstreamTest) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range ended {
		res := recorded(initial[t.Name].Initial, t.Result)
		if res == "PROVISIONAL_SKIPPED" {
			continue
		}
		if res == "SUCCEEDED" && t.Provisional {
			provisionalPassed = append(provisionalPassed, t.Name)
		}
		for _, p := range t.Profiles {
			r := reports[p.Name]
			if r == nil {
				r = &confv1.ProfileReport{Name: p.Name}
				reports[p.Name] = r
			}
			st := &r.Core
			if p.Level == "extended" {
				if r.Extended == nil {
					r.Extended = &confv1.ExtendedStatus{}
				}
				st = &r.Extended.Status
			}
			switch res {
			case "SUCCEEDED":
				st.Passed++
			case "FAILED":
				st.Failed++
				if st.FailedTests == nil {
					st.FailedTests = []string{}
				}
				st.FailedTests = append(st.FailedTests, t.Name)
			case "SKIPPED":
				st.Skipped++
				st.SkippedTests = append(st.SkippedTests, t.Name)
			}
		}
	}
	c := u.Counts()
	finished := c[model.UpstreamPassed] + c[model.UpstreamFailed] + c[model.UpstreamSkipped]
	planProfiles := map[string]model.UpstreamPlanProfile{}
	for _, p := range plan.Profiles {
		planProfiles[p.Name] = p
	}
	var list []confv1.ProfileReport
	for _, r := range reports {
		r.Core.Result = levelResult(r.Core)
		summary := "Core tests " + levelSummary(r.Core)
		if r.Extended != nil {
			r.Extended.Result = levelResult(r.Extended.Status)
			summary += ". Extended tests " + levelSummary(r.Extended.Status)
			pp := planProfiles[r.Name]
			r.Extended.SupportedFeatures = pp.ExtendedSupportedFeatures
			r.Extended.UnsupportedFeatures = pp.ExtendedUnsupportedFeatures
		}
		r.Summary = fmt.Sprintf("PARTIAL: only %d of %d tests finished. %s.", finished, len(u.Tests), summary)
		list = append(list, *r)
	}
	slices.SortFunc(list, func(a, b confv1.ProfileReport) int { return strings.Compare(a.Name, b.Name) })
	cr := confv1.ConformanceReport{
		TypeMeta:                  metav1.TypeMeta{APIVersion: confv1.GroupVersion.String(), Kind: "ConformanceReport"},
		Date:                      now.Format(time.RFC3339),
		Mode:                      plan.Mode,
		Implementation:            plan.Implementation,
		GatewayAPIVersion:         plan.GatewayAPIVersion,
		GatewayAPIChannel:         channel,
		ProfileReports:            list,
		SucceededProvisionalTests: provisionalPassed,
	}
	body, err := yaml.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("partial conformance report: %w", err)
	}
	why := strings.ReplaceAll(u.Reason, "\n", " ")
	raw := fmt.Sprintf("%s (%s): built by gatecheck from the tests that finished; not a complete run, do not submit.\n%s",
		model.PartialConformanceMarker, why, body)
	return ParseConformance("partial conformance report", []byte(raw))
}

// recorded is the upstream suite's recordTestResult: how a test's end turns its initial
// classification into the result its report counts.
func recorded(initial string, r model.UpstreamResult) string {
	switch r {
	case model.UpstreamFailed:
		return "FAILED"
	case model.UpstreamSkipped:
		if initial == "NOT_SUPPORTED" || initial == "PROVISIONAL_SKIPPED" {
			return initial
		}
		return "SKIPPED"
	default:
		if initial == "NOT_SUPPORTED" || initial == "PROVISIONAL_SKIPPED" || initial == "SKIPPED" {
			return initial
		}
		return "SUCCEEDED"
	}
}

func levelResult(s confv1.Status) confv1.Result {
	switch {
	case s.Failed > 0:
		return confv1.Failure
	case s.Skipped > 0:
		return confv1.Partial
	}
	return confv1.Success
}

func levelSummary(s confv1.Status) string {
	switch s.Result {
	case confv1.Partial:
		return fmt.Sprintf("partially succeeded with %d test skips", s.Skipped)
	case confv1.Failure:
		return fmt.Sprintf("failed with %d test failures", s.Failed)
	}
	return "succeeded"
}
