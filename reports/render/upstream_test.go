package render

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/model"
)

func upstreamReport() *model.Report {
	core := []model.UpstreamProfile{{Name: "GATEWAY-HTTP", Level: "core"}}
	return &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{}, Upstream: &model.Upstream{
		Partial: true, Reason: "interrupted: 2 of 5 tests finished",
		Tests: []model.UpstreamTest{
			{Name: "HTTPRouteSimpleSameNamespace", Result: model.UpstreamPassed, Profiles: core, Features: []string{"Gateway", "HTTPRoute"}, DurationSeconds: 1.5},
			{Name: "HTTPRouteWeight", Result: model.UpstreamFailed, Profiles: core, Features: []string{"Gateway", "HTTPRoute"},
				Message: "Error: \x1b[31mshare 0.61\x1b[0m; want 0.7 \xff\x00"},
			{Name: "GatewayInvalidTLSConfiguration", Result: model.UpstreamRunning,
				Profiles: []model.UpstreamProfile{{Name: "GATEWAY-HTTP", Level: "core"}, {Name: "GATEWAY-TLS", Level: "extended"}}},
			{Name: "HTTPRouteQueryParamMatching", Result: model.UpstreamNotStarted, SkipReason: "suite does not support HTTPRouteQueryParamMatching"},
			{Name: "NoProfile", Result: model.UpstreamNotStarted},
		},
	}}
}

func TestJUnitUpstreamTests(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := JUnit(&buf, upstreamReport()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Props     []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"properties>property"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, buf.String())
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Name != "conformance tests" {
		t.Fatalf("suites %+v; want one \"conformance tests\"", doc.Suites)
	}
	s := doc.Suites[0]
	if s.Tests != 5 || s.Failures != 1 || s.Errors != 1 || s.Skipped != 2 {
		t.Errorf("counts tests %d failures %d errors %d skipped %d; want 5 1 1 2", s.Tests, s.Failures, s.Errors, s.Skipped)
	}
	props := func(i int) string {
		var ps []string
		for _, p := range s.Cases[i].Props {
			ps = append(ps, p.Name+"="+p.Value)
		}
		return strings.Join(ps, " ")
	}
	for i, want := range []struct{ class, props string }{
		{"conformance.GATEWAY-HTTP", "profile=GATEWAY-HTTP level=core features=Gateway,HTTPRoute"},
		{"conformance.GATEWAY-HTTP", "profile=GATEWAY-HTTP level=core features=Gateway,HTTPRoute"},
		{"conformance.GATEWAY-HTTP", "profile=GATEWAY-HTTP,GATEWAY-TLS level=GATEWAY-HTTP:core,GATEWAY-TLS:extended"},
		{"conformance", ""},
		{"conformance", ""},
	} {
		if s.Cases[i].Classname != want.class || props(i) != want.props {
			t.Errorf("testcase %s: classname %q properties %q; want %q %q", s.Cases[i].Name, s.Cases[i].Classname, props(i), want.class, want.props)
		}
	}
	if bytes.Contains(buf.Bytes(), []byte("\x1b")) || bytes.Contains(buf.Bytes(), []byte("<properties></properties>")) {
		t.Error("junit.xml carries a control character or an empty <properties>")
	}
}

func TestHTMLUpstreamTable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := HTML(&buf, upstreamReport()); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Finished first, then running, then never started; every test once.
	order := []string{"HTTPRouteSimpleSameNamespace", "HTTPRouteWeight", "GatewayInvalidTLSConfiguration", "HTTPRouteQueryParamMatching", "NoProfile"}
	last := -1
	for _, name := range order {
		i := strings.Index(page, ">"+name)
		if i < 0 || i < last {
			t.Errorf("%s at %d (previous at %d); want every test in order finished, running, never started", name, i, last)
		}
		last = i
	}
	for _, want := range []string{`id="upstream-partial"`, "interrupted: 2 of 5 tests finished", "1 passed, 1 failed, 0 skipped, 1 running when the suite stopped, 2 never started",
		"would have been skipped: suite does not support HTTPRouteQueryParamMatching", "running at stop"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(page, "no value") {
		t.Error("report.html prints a missing template value")
	}
}
