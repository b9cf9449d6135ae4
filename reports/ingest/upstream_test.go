package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reports/model"
)

func upstreamResults(u *model.Upstream) map[string]model.UpstreamResult {
	m := map[string]model.UpstreamResult{}
	for _, t := range u.Tests {
		m[t.Name] = t.Result
	}
	return m
}

func TestReadConformanceEventsRecorded(t *testing.T) {
	t.Parallel()
	all := func(r model.UpstreamResult, over map[string]model.UpstreamResult) map[string]model.UpstreamResult {
		m := map[string]model.UpstreamResult{}
		for _, n := range []string{"FakePass", "FakeFail", "FakeExtended", "FakeProvisional", "FakeBlock", "FakeParallel", "FakeAfter"} {
			m[n] = r
		}
		m["FakeUnsupported"], m["FakeSkipped"] = model.UpstreamSkipped, model.UpstreamSkipped
		for k, v := range over {
			m[k] = v
		}
		return m
	}
	stopped := map[string]model.UpstreamResult{"FakeFail": model.UpstreamFailed, "FakeBlock": model.UpstreamRunning,
		"FakeParallel": model.UpstreamNotStarted, "FakeAfter": model.UpstreamNotStarted}
	cases := []struct {
		file    string
		want    map[string]model.UpstreamResult
		partial bool
		reason  []string
	}{
		{file: "complete", want: all(model.UpstreamPassed, nil)},
		{file: "failing", want: all(model.UpstreamPassed, map[string]model.UpstreamResult{"FakeFail": model.UpstreamFailed})},
		{file: "interrupted", want: all(model.UpstreamPassed, stopped), partial: true,
			reason: []string{"stopped before its end: 6 of 9 tests finished, 1 running, 2 never started"}},
		{file: "crash", want: all(model.UpstreamPassed, stopped), partial: true,
			reason: []string{"1 running", "crash.jsonl:13: last event cut short"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			u, plan, err := ReadConformanceEvents("testdata/upstream/" + c.file + ".jsonl")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, upstreamResults(u)); d != "" {
				t.Errorf("results (-want +got):\n%s", d)
			}
			if u.Partial != c.partial {
				t.Errorf("partial %v; want %v (reason %q)", u.Partial, c.partial, u.Reason)
			}
			for _, r := range c.reason {
				if !strings.Contains(u.Reason, r) {
					t.Errorf("reason %q; want it to contain %q", u.Reason, r)
				}
			}
			if len(plan.Tests) != 9 || len(u.Tests) != 9 {
				t.Errorf("plan has %d tests, record %d; want 9", len(plan.Tests), len(u.Tests))
			}
			if err := u.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestReadConformanceEventsErrors(t *testing.T) {
	t.Parallel()
	plan := `{"event":"plan","time":"2026-01-01T00:00:00Z","plan":{"tests":[{"name":"A","willRun":true,"initial":"SUCCEEDED"}]}}`
	cases := []struct{ name, data, want string }{
		{"empty", "", "x.jsonl: no plan event"},
		{"start before plan", `{"event":"start","test":"A"}` + "\n", `x.jsonl:1:1: start event for "A" before the plan event`},
		{"unknown test", plan + "\n" + `{"event":"end","test":"B","result":"pass"}` + "\n", `x.jsonl:2:1: end event for test "B", which is not in the plan`},
		{"bad result", plan + "\n" + `{"event":"end","test":"A","result":"ok"}` + "\n", `x.jsonl:2:1: end event for "A": result "ok" is not pass, fail or skip`},
		{"bad line in the middle", plan + "\n{oops\n" + `{"event":"done"}` + "\n", "x.jsonl:2:1: event: invalid character"},
		{"unknown event", plan + "\n" + `{"event":"finish"}` + "\n", `x.jsonl:2:1: unknown event "finish"`},
		{"two plans", plan + "\n" + plan + "\n", "x.jsonl:2:1: second plan event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseConformanceEvents("x.jsonl", []byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error containing %q", err, c.want)
			}
		})
	}
	_, _, err := ParseConformanceEvents("x.jsonl", nil)
	if !errors.Is(err, ErrNoPlan) {
		t.Errorf("empty file: got %v; want ErrNoPlan", err)
	}
}

// The recorded failing run wrote its own ConformanceReport: the report built from its events
// must count the same, and the interrupted run's counts only the tests that finished.
func TestPartialConformance(t *testing.T) {
	t.Parallel()
	read := func(name string) (*model.Upstream, *model.UpstreamPlan) {
		u, p, err := ReadConformanceEvents("testdata/upstream/" + name + ".jsonl")
		if err != nil {
			t.Fatal(err)
		}
		return u, p
	}
	suiteOwn, err := ReadConformanceFile("testdata/upstream/failing.conformance-report.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if suiteOwn.Partial {
		t.Error("the suite's own report read as partial")
	}
	u, p := read("failing")
	built, err := PartialConformance(p, u, "standard", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	a, b := suiteOwn.Report.ProfileReports[0], built.Report.ProfileReports[0]
	a.Summary, b.Summary = "", ""
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("profile report (-suite +built):\n%s", d)
	}
	if d := cmp.Diff(suiteOwn.Report.SucceededProvisionalTests, built.Report.SucceededProvisionalTests); d != "" {
		t.Errorf("succeeded provisional tests (-suite +built):\n%s", d)
	}

	u, p = read("interrupted")
	part, err := PartialConformance(p, u, "standard", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !part.Partial || !strings.HasPrefix(part.Raw, model.PartialConformanceMarker+" (the upstream suite stopped before its end") {
		t.Errorf("not marked partial: partial %v, raw starts %.100q", part.Partial, part.Raw)
	}
	pr := part.Report.ProfileReports[0]
	if pr.Core.Passed != 2 || pr.Core.Failed != 1 || pr.Core.Skipped != 1 || pr.Extended == nil || pr.Extended.Passed != 1 {
		t.Errorf("interrupted counts: core %+v extended %+v; want core 2 passed (FakePass, FakeProvisional), 1 failed, 1 skipped; extended 1 passed", pr.Core.Statistics, pr.Extended)
	}
	if !strings.HasPrefix(pr.Summary, "PARTIAL: only 6 of 9 tests finished.") {
		t.Errorf("summary %q; want it to start PARTIAL: only 6 of 9 tests finished.", pr.Summary)
	}
	if part.Report.GatewayAPIChannel != "standard" || part.Report.Implementation.Project != "p" || part.Report.GatewayAPIVersion != "v1.6.3" {
		t.Errorf("report metadata %+v", part.Report)
	}
}

// A saved report.json with the upstream record and a partial ConformanceReport reads back the
// same, partial flag included (it is derived from the raw YAML's first line).
func TestUpstreamRoundTrip(t *testing.T) {
	t.Parallel()
	u, p, err := ReadConformanceEvents("testdata/upstream/interrupted.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	c, err := PartialConformance(p, u, "standard", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	r := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{}, Upstream: u, Conformance: c}
	b, err := r.MarshalIndent()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("report.json", b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, back); d != "" {
		t.Errorf("round trip (-wrote +read):\n%s", d)
	}
	var raw struct{ Conformance, Upstream map[string]any }
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Conformance["partial"] != true || raw.Upstream["partial"] != true {
		t.Errorf("report.json: conformance.partial %v, upstream.partial %v; want true, true", raw.Conformance["partial"], raw.Upstream["partial"])
	}

	// A bad result in a saved report is an error naming the test.
	r.Upstream.Tests[0].Result = "done"
	b, _ = r.MarshalIndent()
	if _, err := Parse("report.json", b); err == nil || !strings.Contains(err.Error(), `upstream.tests[0] "FakePass": result "done"`) {
		t.Errorf("got %v; want an error naming upstream.tests[0]", err)
	}
	if _, err := Combine(&model.Report{Upstream: u}, &model.Report{Upstream: u}); err == nil {
		t.Error("Combine accepted two upstream records")
	}
}
