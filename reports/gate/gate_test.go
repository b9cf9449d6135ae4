package gate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"

	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
)

func spec(name string, o model.Outcome, labels ...string) model.Spec {
	sp := model.Spec{Name: name, Outcome: o, NodeType: "It", Labels: labels}
	if o.Failed() || o.Broken() {
		sp.Failure = &model.Failure{Message: name + " broke\nsecond line"}
	}
	if o.NotRun() {
		sp.SkipReason = "feature not supported"
	}
	return sp
}

func report(suites ...model.Suite) *model.Report {
	return &model.Report{SchemaVersion: model.SchemaVersion, Suites: suites}
}

func suite(name string, specs ...model.Spec) model.Suite {
	return model.Suite{Name: name, Succeeded: true, Specs: specs}
}

func conformance(profiles ...confv1.ProfileReport) *model.Conformance {
	return &model.Conformance{Report: confv1.ConformanceReport{ProfileReports: profiles}}
}

func profile(name string, core confv1.Result, ext *confv1.Result) confv1.ProfileReport {
	p := confv1.ProfileReport{Name: name, Core: confv1.Status{Result: core}}
	if core == confv1.Failure {
		p.Core.FailedTests = []string{"HTTPRouteWeight"}
	}
	if ext != nil {
		p.Extended = &confv1.ExtendedStatus{Status: confv1.Status{Result: *ext}}
	}
	return p
}

// withHTTP adds a passing GATEWAY-HTTP profile, which the strict gate requires.
func withHTTP(r *model.Report) *model.Report {
	r.Conformance = conformance(profile("GATEWAY-HTTP", confv1.Success, nil))
	return r
}

func ptr[T any](v T) *T { return &v }

func mustParse(t *testing.T, y string) *gate.Gate {
	t.Helper()
	g, err := gate.Parse("test gate", []byte(y))
	if err != nil {
		t.Fatalf("parse gate: %v", err)
	}
	return g
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	strict := `
version: 1
suites:
- name: optional*
  policy: may-fail
- name: sidecars
  allowSkips: false
  required: true
- name: "*"
specs:
  mayFail:
  - label: flaky
  - name: "*known bug*"
profiles:
- name: GATEWAY-HTTP
  core: success
  extended: partial
  required: true
- name: MESH-*
  core: any
`
	for _, tc := range []struct {
		name      string
		gate      string // empty: the default gate
		report    *model.Report
		wantCode  int
		wantParts []string // substrings, one per reason, in order
	}{
		{"all passed", "", report(suite("traffic", spec("a", model.OutcomePassed), spec("b", model.OutcomeSkipped))), 0, nil},
		{"empty report", "", report(), 2, []string{"no suite results"}},
		{"a failure", "", report(suite("traffic", spec("a", model.OutcomeFailed))), 1, []string{`suite "traffic" spec "a" failed: a broke`}},
		{"a timeout is a verdict", "", report(suite("traffic", spec("a", model.OutcomeTimedOut))), 1, []string{"timedout"}},
		{"a panic could not run", "", report(suite("traffic", spec("a", model.OutcomePanicked), spec("b", model.OutcomeFailed))), 2,
			[]string{`spec "a" could not run (panicked)`, `spec "b" failed`}},
		{"failed BeforeSuite could not run", "", report(suite("traffic", model.Spec{Name: "[BeforeSuite]", NodeType: "BeforeSuite", Outcome: model.OutcomeFailed})), 2,
			[]string{`"[BeforeSuite]" could not run`}},
		{"interrupted run", "", &model.Report{SchemaVersion: model.SchemaVersion, Run: model.Run{Incomplete: []string{"interrupted by user"}}, Suites: []model.Suite{suite("t")}}, 2,
			[]string{"run incomplete: interrupted by user"}},
		{"suite failure reason", "", report(model.Suite{Name: "t", FailureReasons: []string{"Suite Timeout Elapsed"}}), 2, []string{`suite "t": Suite Timeout Elapsed`}},
		{"informational label may fail by default", "", report(suite("t", spec("a", model.OutcomeFailed, "informational"))), 0, nil},
		{"may-fail suite", strict, withHTTP(report(suite("optional-bench", spec("a", model.OutcomeFailed), spec("b", model.OutcomePanicked)), suite("sidecars"))), 0, nil},
		{"skips not allowed", strict, withHTTP(report(suite("sidecars", spec("a", model.OutcomeSkipped), spec("b", model.OutcomePending)))), 1,
			[]string{`spec "a" was skipped (the gate allows no skips in this suite): feature not supported`, `spec "b" was pending`}},
		{"required suite missing", strict, withHTTP(report(suite("traffic", spec("a", model.OutcomeFailed)))), 2,
			[]string{`required suite "sidecars" is missing`, `spec "a" failed`}},
		{"may-fail by label and name", strict, withHTTP(report(suite("sidecars", spec("a", model.OutcomeFailed, "flaky"), spec("the known bug one", model.OutcomeFailed)))), 0, nil},
		{"required profile without report", strict, report(suite("sidecars")), 2, []string{`profile "GATEWAY-HTTP" is required but the run has no ConformanceReport`}},
		{"profile results", strict, func() *model.Report {
			r := report(suite("sidecars"))
			r.Conformance = conformance(
				profile("GATEWAY-HTTP", confv1.Success, ptr(confv1.Partial)),
				profile("MESH-HTTP", confv1.Failure, nil),
				profile("GATEWAY-TLS", confv1.Failure, nil), // no rule: not gated
			)
			return r
		}(), 0, nil},
		{"profile failures", strict, func() *model.Report {
			r := report(suite("sidecars"))
			r.Conformance = conformance(profile("GATEWAY-HTTP", confv1.Failure, ptr(confv1.Failure)))
			return r
		}(), 1, []string{`profile GATEWAY-HTTP core: result "failure"; the gate requires success: failed HTTPRouteWeight`, `profile GATEWAY-HTTP extended: result "failure"; the gate requires partial`}},
		{"required profile missing", strict, func() *model.Report {
			r := report(suite("sidecars"))
			r.Conformance = conformance(profile("GATEWAY-GRPC", confv1.Success, nil))
			return r
		}(), 2, []string{`required profile "GATEWAY-HTTP" is missing`}},
		{"default gate: partial core fails", "", func() *model.Report {
			r := report()
			r.Conformance = conformance(profile("GATEWAY-HTTP", confv1.Partial, ptr(confv1.Partial)))
			return r
		}(), 1, []string{`profile GATEWAY-HTTP core: result "partial"; the gate requires success`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := gate.Default()
			if tc.gate != "" {
				g = mustParse(t, tc.gate)
			}
			code, reasons := g.Evaluate(tc.report)
			if code != tc.wantCode {
				t.Errorf("code: got %d; want %d (reasons %q)", code, tc.wantCode, reasons)
			}
			if len(reasons) != len(tc.wantParts) {
				t.Fatalf("reasons: got %q; want %d matching %q", reasons, len(tc.wantParts), tc.wantParts)
			}
			for i, w := range tc.wantParts {
				if !strings.Contains(reasons[i], w) {
					t.Errorf("reason %d: got %q; want it to contain %q", i, reasons[i], w)
				}
			}
		})
	}
}

// The recorded run has a failed weight spec and failing conformance profiles: exit 1.
func TestEvaluateRecorded(t *testing.T) {
	t.Parallel()
	r, err := ingest.ReadFile(filepath.Join("..", "testdata", "ginkgo-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Conformance, err = ingest.ReadConformanceFile(filepath.Join("..", "testdata", "conformance-report.yaml")); err != nil {
		t.Fatal(err)
	}
	code, reasons := gate.Evaluate(r)
	if code != gate.CodeFail || len(reasons) != 3 {
		t.Errorf("got code %d reasons %q; want 1 with 3 reasons (the 90/10 spec, GATEWAY-HTTP extended, GATEWAY-GRPC core)", code, reasons)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, want string }{
		{"version", "version: 2\n", "version 2: want 1"},
		{"unknown field", "version: 1\nsuite: []\n", `unknown field "suite"`},
		{"bad policy", "version: 1\nsuites:\n- name: x\n  policy: should-pass\n", `suites[0].policy "should-pass"`},
		{"bad pattern", "version: 1\nsuites:\n- name: \"[\"\n", "suites[0].name: pattern"},
		{"empty name", "version: 1\nprofiles:\n- core: success\n", "profiles[0].name: empty"},
		{"bad requirement", "version: 1\nprofiles:\n- name: x\n  core: perfect\n", `profiles[0].core "perfect"`},
		{"empty spec match", "version: 1\nspecs:\n  mayFail:\n  - {}\n", "specs.mayFail[0]: set label or name"},
		{"tolerance not a number", "version: 1\ntolerances:\n  weight.alpha: lots\n", "gate file g.yaml"},
		{"bad yaml", "version: 1\nsuites: [\n", "gate file g.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := gate.Parse("g.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTolerance(t *testing.T) {
	t.Parallel()
	g := mustParse(t, "version: 1\ntolerances:\n  weightTolerancePts: 0.01\n")
	got := []float64{g.Tolerance("weightTolerancePts", 0.05), g.Tolerance("weight.alpha", 0.001), (*gate.Gate)(nil).Tolerance("x", 3)}
	if diff := cmp.Diff([]float64{0.01, 0.001, 3}, got); diff != "" {
		t.Errorf("tolerances (-want +got):\n%s", diff)
	}
	// The default gate leaves the suites' own defaults in force.
	if got := gate.Default().Tolerance("alpha", 0.5); got != 0.5 {
		t.Errorf("default alpha: got %v; want the caller's default 0.5", got)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "gate.yaml")
	if err := os.WriteFile(p, []byte("version: 1\nsuites:\n- name: x\n  policy: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gate.Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("got %v; want an error naming %s", err, p)
	}
}
