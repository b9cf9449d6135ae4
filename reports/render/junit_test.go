package render_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/reports/render"
)

// Logs of failing specs carry terminal control bytes and "]]>"; the JUnit file must still parse,
// and a suite Ginkgo failed outside any spec must show up as an error.
func TestJUnitHostileText(t *testing.T) {
	t.Parallel()
	nasty := "bell\a esc\x1b[31m nul\x00 cdata-end ]]> invalid \xff utf8"
	r := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{{
		Name: "s", FailureReasons: []string{"Interrupted by User"},
		Specs: []model.Spec{{Name: "x " + nasty, Outcome: model.OutcomeFailed, Failure: &model.Failure{Message: nasty}, Logs: nasty},
			{Name: "y", Outcome: model.OutcomeSkipped, SkipReason: nasty}},
	}}}
	var buf bytes.Buffer
	if err := render.JUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Errors   int `xml:"errors,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Body string `xml:",chardata"`
				} `xml:"failure"`
				Out string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, buf.String())
	}
	if doc.Errors != 1 || doc.Failures != 1 {
		t.Errorf("errors %d, failures %d; want 1 (the interrupted suite) and 1", doc.Errors, doc.Failures)
	}
	cases := doc.Suites[0].Cases
	if len(cases) != 3 || cases[2].Name != "[suite] s" {
		t.Fatalf("testcases %+v; want x, y and [suite] s", cases)
	}
	if f := cases[0].Failure; f == nil || !strings.Contains(f.Body, "cdata-end ]]> invalid") {
		t.Errorf("failure body %+v; want the message with ]]> kept", f)
	}
	if !strings.Contains(cases[0].Out, "bell\uFFFD esc\uFFFD[31m") {
		t.Errorf("system-out %q; want control bytes replaced by U+FFFD", cases[0].Out)
	}
}
