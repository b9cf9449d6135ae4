package ingest_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/reports/render"
)

var recordedPath = filepath.Join("..", "testdata", "ginkgo-report.json")

func readRecorded(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(recordedPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRecordedGinkgo(t *testing.T) {
	t.Parallel()
	r, err := ingest.Parse(recordedPath, readRecorded(t))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got, want := len(r.Suites), 2; got != want {
		t.Fatalf("suites: got %d; want %d", got, want)
	}
	wantRun := model.Run{GatecheckVersion: "v0.1.0-recorded", Implementation: "envoy-gateway v1.8.0", GatewayClass: "gatecheck-eg",
		ClusterProvider: "kind", KubernetesVersion: "v1.36.1", GatewayAPIVersion: "v1.6.3", GatewayAPIChannel: "standard"}
	gotRun := r.Run
	gotRun.Start, gotRun.End = wantRun.Start, wantRun.End
	if diff := cmp.Diff(wantRun, gotRun); diff != "" {
		t.Errorf("run metadata from the gatecheck.run entry (-want +got):\n%s", diff)
	}
	if r.Run.Start.IsZero() || !r.Run.End.After(r.Run.Start) {
		t.Errorf("run window %v .. %v; want start before end", r.Run.Start, r.Run.End)
	}
	specs := map[string]model.Spec{}
	for _, s := range r.Suites {
		for _, sp := range s.Specs {
			specs[sp.Name] = sp
		}
	}
	for _, tc := range []struct {
		spec    string
		outcome model.Outcome
		kinds   []model.Kind
		labels  []string
	}{
		{"Weighted split splits 80/20 within tolerance", model.OutcomePassed, []model.Kind{model.KindWeight}, []string{"traffic", "feature:weight"}},
		{"Weighted split splits 90/10 at the declared weights", model.OutcomeFailed, []model.Kind{model.KindWeight}, []string{"traffic", "feature:weight"}},
		{"Mirror isolation keeps primary latency when the mirror is slow", model.OutcomePassed, []model.Kind{model.KindLatency}, []string{"traffic", "feature:mirror"}},
		{"Route propagation propagates new routes and backend changes", model.OutcomePassed, []model.Kind{model.KindPropagation}, []string{"propagation"}},
		{"Route propagation propagates response header filter changes", model.OutcomeSkipped, nil, []string{"propagation", "feature:header-modifier"}},
		{"Route propagation propagates 3,000 routes without errors", model.OutcomePending, nil, []string{"propagation"}},
		{"Sidecar lifecycle terminates the proxy sidecar after the main container", model.OutcomePassed, []model.Kind{model.KindSidecar}, []string{"sidecar"}},
	} {
		sp, ok := specs[tc.spec]
		if !ok {
			t.Errorf("spec %q missing", tc.spec)
			continue
		}
		if sp.Outcome != tc.outcome {
			t.Errorf("%s: outcome %s; want %s", tc.spec, sp.Outcome, tc.outcome)
		}
		var kinds []model.Kind
		for _, m := range sp.Measurements {
			kinds = append(kinds, m.Kind)
		}
		if diff := cmp.Diff(tc.kinds, kinds); diff != "" {
			t.Errorf("%s: measurement kinds (-want +got):\n%s", tc.spec, diff)
		}
		if diff := cmp.Diff(tc.labels, sp.Labels); diff != "" {
			t.Errorf("%s: labels (-want +got):\n%s", tc.spec, diff)
		}
	}
	failed := specs["Weighted split splits 90/10 at the declared weights"]
	if failed.Failure == nil || !strings.Contains(failed.Failure.Message, "infra-backend-v2 share interval") || !strings.HasSuffix(failed.Failure.Location, "recorder_test.go:128") {
		t.Errorf("failure: got %+v; want the Gomega message and its location", failed.Failure)
	}
	if !strings.Contains(failed.Logs, "backend infra-backend-v2: 804 responses") {
		t.Errorf("logs: got %q; want the GinkgoWriter output", failed.Logs)
	}
	if got := specs["Route propagation propagates response header filter changes"].SkipReason; !strings.Contains(got, "HTTPRouteResponseHeaderModification") {
		t.Errorf("skip reason: got %q; want the Skip message", got)
	}
	w := specs["Weighted split splits 80/20 within tolerance"].Measurements[0].Weight
	if w.N != 6000 || len(w.Backends) != 2 || w.Backends[0].Count != 4811 || w.Backends[0].Lo >= w.Backends[0].Share || w.Decision != model.DecisionPass {
		t.Errorf("weight verdict did not survive the round trip through Ginkgo: %+v", w)
	}
	sc := specs["Sidecar lifecycle terminates the proxy sidecar after the main container"]
	if diff := cmp.Diff([]model.Note{{Name: "pod", Value: "gatecheck-sidecar/termination-7f9c"}}, sc.Notes); diff != "" {
		t.Errorf("plain report entries become notes (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	rec := readRecorded(t)
	entry := func(name, asJSON string) string {
		return `[{"SuiteDescription":"s","SpecReports":[{"LeafNodeType":"It","LeafNodeText":"x","State":"passed","ReportEntries":[{"Name":` +
			strings.ReplaceAll(quote(name), "\n", "") + `,"Value":{"AsJSON":` + quote(asJSON) + `,"Representation":""}}]}]}]`
	}
	for _, tc := range []struct {
		name string
		data string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"results.json: file is empty"}},
		{"whitespace", " \n\t", []string{"results.json: file is empty"}},
		{"truncated recorded report", string(rec[:len(rec)/2]), []string{"results.json:", "file ends early (truncated?)"}},
		{"garbage on line 3", "[\n  {\"SuiteDescription\": \"s\"},\n  }\n]", []string{"results.json:3:3:", "invalid character"}},
		{"wrong type", `{"SuiteDescription": "s", "SpecReports": 5}`, []string{"results.json:1:", "decode Ginkgo report", "SpecReports"}},
		{"neither format", `{"hello": 1}`, []string{"neither a gatecheck report", "nor a Ginkgo JSON report"}},
		{"a number", `42`, []string{"neither a gatecheck report"}},
		{"measurement not JSON", entry("gatecheck.measurement/weight", `{"kind":`), []string{`spec 0 "x"`, `report entry 0 "gatecheck.measurement/weight"`}},
		{"measurement kind mismatch", entry("gatecheck.measurement/latency", `{"kind":"weight","title":"t","weight":{}}`), []string{`kind "weight"; want "latency"`}},
		{"measurement without payload", entry("gatecheck.measurement/weight", `{"kind":"weight","title":"t"}`), []string{"0 payloads set"}},
		{"unknown kind", entry("gatecheck.measurement/vibes", `{"kind":"vibes","title":"t","weight":{}}`), []string{`kind "vibes" is not one of`}},
		{"bad event kind", entry("gatecheck.measurement/sidecar", `{"kind":"sidecar","title":"t","sidecar":{"variants":[{"variant":"native","containers":[{"name":"c","events":[{"kind":"boom","timeMs":1}]}]}]}}`),
			[]string{`containers[0] "c" events[0]: kind "boom"`}},
		{"run entry not an object", entry("gatecheck.run", `[1]`), []string{"decode run metadata"}},
		{"model wrong schema", `{"schemaVersion": "gatecheck.report/v0", "suites": []}`, []string{`schemaVersion "gatecheck.report/v0": want "gatecheck.report/v1"`}},
		{"model bad outcome", `{"schemaVersion": "gatecheck.report/v1", "suites": [{"name": "s", "specs": [{"name": "x", "outcome": "meh"}]}]}`, []string{`outcome "meh" is not one of`}},
		{"model bad type on line 2", "{\"schemaVersion\": \"gatecheck.report/v1\",\n \"suites\": {}}", []string{"results.json:2:", "suites"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ingest.Parse("results.json", []byte(tc.data))
			if err == nil {
				t.Fatalf("got a report with %d suites; want an error", len(r.Suites))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestReadFileNamesTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "results.json")
	if err := os.WriteFile(p, []byte("[{\"SuiteDescription\": \"s\",\n\"SpecReports\": [{"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ingest.ReadFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2:") {
		t.Errorf("got %v; want an error starting with %s:2:", err, p)
	}
	if _, err := ingest.ReadFile(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("got %v; want an error naming missing.json", err)
	}
}

func TestParseConformance(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(filepath.Join("..", "testdata", "conformance-report.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ingest.ParseConformance("conformance-report.yaml", good)
	if err != nil {
		t.Fatalf("parse recorded report: %v", err)
	}
	if c.Raw != string(good) {
		t.Errorf("Raw differs from the file")
	}
	if got := len(c.Report.ProfileReports); got != 2 || c.Report.ProfileReports[0].Core.Passed != 37 {
		t.Errorf("profiles: got %d, GATEWAY-HTTP core passed %d; want 2 and 37", got, c.Report.ProfileReports[0].Core.Passed)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "cr.yaml: conformance report is empty"},
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\n", `cr.yaml: kind "ConfigMap"; want ConformanceReport`},
		{"bad yaml", "kind: ConformanceReport\nprofiles:\n- name: [\n", "cr.yaml: decode ConformanceReport YAML"},
		{"wrong type", "kind: ConformanceReport\nprofiles: 3\n", "cr.yaml: decode ConformanceReport YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ingest.ParseConformance("cr.yaml", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCombine(t *testing.T) {
	t.Parallel()
	a, err := ingest.Parse(recordedPath, readRecorded(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &model.Conformance{Raw: "x"}
	b := &model.Report{SchemaVersion: model.SchemaVersion, Conformance: c}
	got, err := ingest.Combine(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Suites) != 2 || got.Conformance != c || got.Run.Implementation != a.Run.Implementation {
		t.Errorf("combined: %d suites, conformance %v, implementation %q; want 2, the one given, %q", len(got.Suites), got.Conformance, got.Run.Implementation, a.Run.Implementation)
	}
	if _, err := ingest.Combine(b, b); err == nil {
		t.Errorf("combining two ConformanceReports: got no error; want one")
	}
}

// FuzzParse feeds arbitrary bytes to the results parser: it must return a report or an error,
// never panic, and any report it returns must render in every format.
func FuzzParse(f *testing.F) {
	rec := readRecorded(f)
	f.Add(rec)
	f.Add(rec[:len(rec)/3])
	f.Add([]byte(`{"schemaVersion":"gatecheck.report/v1","suites":[{"name":"s","specs":[{"name":"x","outcome":"failed","measurements":[{"kind":"latency","title":"t","latency":{"series":[{"label":"a","buckets":[{"lowerMs":1,"upperMs":2,"count":3}]}]}}]}]}]}`))
	f.Add([]byte(`[{"SuiteDescription":"s","SpecReports":[{"LeafNodeType":"BeforeSuite","State":"panicked"}]}]`))
	f.Add([]byte(`{"SpecReports":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ingest.Parse("fuzz.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for name, fn := range map[string]func(io.Writer, *model.Report) error{"json": render.JSON, "html": render.HTML, "junit": render.JUnit} {
			if err := fn(io.Discard, r); err != nil {
				t.Errorf("render %s of a parsed report: %v", name, err)
			}
		}
	})
}

// FuzzParseConformance: arbitrary YAML gives a ConformanceReport or an error, never a panic.
func FuzzParseConformance(f *testing.F) {
	good, err := os.ReadFile(filepath.Join("..", "testdata", "conformance-report.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ingest.ParseConformance("cr.yaml", data)
		if err == nil && c.Raw != string(data) {
			t.Errorf("Raw differs from the input")
		}
	})
}

// In a ReportAfterSuite the entries hold raw values, not JSON.
func TestFromGinkgoInProcess(t *testing.T) {
	t.Parallel()
	name, v := model.Entry("split", &model.WeightVerdict{N: 10, Decision: model.DecisionPass})
	runName, run := model.RunEntry(model.Run{GatewayClass: "gc"})
	rep := types.Report{SuiteDescription: "s", SuiteSucceeded: true, SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed,
			ReportEntries: types.ReportEntries{{Name: runName, Value: types.WrapEntryValue(run)}}},
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "x", State: types.SpecStatePassed,
			ReportEntries: types.ReportEntries{{Name: name, Value: types.WrapEntryValue(v)}, {Name: "pod", Value: types.WrapEntryValue("ns/p")}}},
	}}
	r, err := ingest.FromGinkgo([]types.Report{rep})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.GatewayClass != "gc" || len(r.Suites) != 1 || len(r.Suites[0].Specs) != 1 {
		t.Fatalf("got run %+v and suites %+v; want gatewayClass gc and the one It (BeforeSuite passed, so hidden)", r.Run, r.Suites)
	}
	sp := r.Suites[0].Specs[0]
	if len(sp.Measurements) != 1 || sp.Measurements[0].Weight == nil || sp.Measurements[0].Weight.N != 10 {
		t.Errorf("measurements %+v; want the weight verdict with n=10", sp.Measurements)
	}
	if diff := cmp.Diff([]model.Note{{Name: "pod", Value: "ns/p"}}, sp.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}
