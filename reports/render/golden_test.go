package render_test

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/reports/render"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// recorded is the report built from the recorded Ginkgo JSON and ConformanceReport YAML.
func recorded(t *testing.T) *model.Report {
	t.Helper()
	r, err := ingest.ReadFile(filepath.Join("..", "testdata", "ginkgo-report.json"))
	if err != nil {
		t.Fatalf("read recorded Ginkgo report: %v", err)
	}
	c, err := ingest.ReadConformanceFile(filepath.Join("..", "testdata", "conformance-report.yaml"))
	if err != nil {
		t.Fatalf("read recorded ConformanceReport: %v", err)
	}
	r.Conformance = c
	return r
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		golden string
		render func(io.Writer, *model.Report) error
	}{
		{"json", "report.json", render.JSON},
		{"junit", "junit.xml", render.JUnit},
		{"conformance yaml", "conformance-report.yaml", render.ConformanceYAML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := tc.render(&buf, recorded(t)); err != nil {
				t.Fatalf("render: %v", err)
			}
			path := filepath.Join("..", "testdata", "golden", tc.golden)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test ./reports/render -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("%s differs from %s (-want +got; rerun with -update if the change is intended):\n%s", tc.name, path, diff)
			}
		})
	}
}

// The upstream YAML must come out byte for byte as it went in, ready to submit.
func TestConformanceYAMLUnmodified(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(filepath.Join("..", "testdata", "conformance-report.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := render.ConformanceYAML(&buf, recorded(t)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), in) {
		t.Errorf("conformance-report.yaml changed in rendering:\n%s", cmp.Diff(string(in), buf.String()))
	}
}

// Rendering the JSON and reading it back must give the same report, so `gatecheck report`
// can re-render a saved run.
func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	r := recorded(t)
	var buf bytes.Buffer
	if err := render.JSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	back, err := ingest.Parse("report.json", buf.Bytes())
	if err != nil {
		t.Fatalf("parse rendered JSON: %v", err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("round trip changed the report (-before +after):\n%s", diff)
	}
}
