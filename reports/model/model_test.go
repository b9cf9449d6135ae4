package model_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/gatecheck/gatecheck/reports/model"
)

func TestEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		value    model.Value
		wantName string
	}{
		{"weight", &model.WeightVerdict{N: 10, Decision: model.DecisionPass}, "gatecheck.measurement/weight"},
		{"latency", &model.LatencyHistograms{}, "gatecheck.measurement/latency"},
		{"propagation", &model.Propagation{}, "gatecheck.measurement/propagation"},
		{"sidecar", &model.SidecarTimelines{}, "gatecheck.measurement/sidecar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name, v := model.Entry("title", tc.value)
			if name != tc.wantName {
				t.Errorf("entry name: got %q; want %q", name, tc.wantName)
			}
			// Ginkgo wraps the value and stores its JSON; that must decode back to the measurement.
			wrapped, err := json.Marshal(types.WrapEntryValue(v))
			if err != nil {
				t.Fatalf("Ginkgo could not encode the entry: %v", err)
			}
			var rev types.ReportEntryValue
			if err := json.Unmarshal(wrapped, &rev); err != nil {
				t.Fatal(err)
			}
			var m model.Measurement
			if err := json.Unmarshal([]byte(rev.AsJSON), &m); err != nil {
				t.Fatal(err)
			}
			if err := m.Validate(); err != nil {
				t.Errorf("decoded measurement is invalid: %v", err)
			}
			if diff := cmp.Diff(v, m); diff != "" {
				t.Errorf("round trip through Ginkgo (-sent +decoded):\n%s", diff)
			}
		})
	}
}

// A NaN p-value (0 of 0 requests) must not make Ginkgo fail to write the whole JSON report.
func TestEntryReplacesNonFinite(t *testing.T) {
	t.Parallel()
	v := &model.WeightVerdict{PValue: math.NaN(), Backends: []model.WeightShare{{Backend: "a", Hi: math.Inf(1)}}}
	_, val := model.Entry("empty run", v)
	m := val.(model.Measurement)
	want := []string{"weight.backends[0].hi was +Inf; replaced by 0", "weight.pValue was NaN; replaced by 0"}
	if diff := cmp.Diff(want, m.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if _, err := json.Marshal(types.WrapEntryValue(val)); err != nil {
		t.Errorf("encode entry: %v", err)
	}
}

func TestMeasurementString(t *testing.T) {
	t.Parallel()
	m := model.New("80/20", &model.WeightVerdict{N: 6000, PValue: 0.0004, Decision: model.DecisionPass, Message: "ok"})
	if got, want := m.String(), `weight "80/20": pass n=6000 p=0.0004 ok`; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    model.Measurement
		want string
	}{
		{"two payloads", model.Measurement{Kind: model.KindWeight, Weight: &model.WeightVerdict{}, Latency: &model.LatencyHistograms{}}, "2 payloads set"},
		{"wrong payload", model.Measurement{Kind: model.KindWeight, Latency: &model.LatencyHistograms{}}, `kind "weight" but its "weight" field is empty`},
		{"negative count", model.New("t", &model.WeightVerdict{Backends: []model.WeightShare{{Backend: "a", Count: -1}}}), "negative count -1"},
		{"inverted bucket", model.New("t", &model.LatencyHistograms{Series: []model.LatencyHistogram{{Label: "s", Buckets: []model.Bucket{{LowerMs: 2, UpperMs: 1}}}}}), "buckets[0]"},
		{"ok", model.New("t", &model.SidecarTimelines{Variants: []model.SidecarTimeline{{Variant: "native", Containers: []model.ContainerTimeline{{Name: "c", Events: []model.ContainerEvent{{Kind: model.EventRestart}}}}}}}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.m.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRunMerge(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := model.Run{Implementation: "eg", Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute)}
	r.Merge(model.Run{Implementation: "other", GatewayClass: "gc", ReachMode: "port-forward", Start: t0, End: t0.Add(90 * time.Second), Incomplete: []string{"x"}})
	want := model.Run{Implementation: "eg", GatewayClass: "gc", ReachMode: "port-forward", Start: t0, End: t0.Add(2 * time.Minute), Incomplete: []string{"x"}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
}

func TestFillRunFromConformance(t *testing.T) {
	t.Parallel()
	r := &model.Report{Run: model.Run{GatewayAPIChannel: "experimental"}, Conformance: &model.Conformance{}}
	r.Conformance.Report.GatewayAPIVersion = "v1.6.3"
	r.Conformance.Report.GatewayAPIChannel = "standard"
	r.Conformance.Report.Project = "envoy-gateway"
	r.Conformance.Report.Version = "v1.8.0"
	r.FillRunFromConformance()
	want := model.Run{GatewayAPIVersion: "v1.6.3", GatewayAPIChannel: "experimental", Implementation: "envoy-gateway v1.8.0"}
	if diff := cmp.Diff(want, r.Run); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
}
