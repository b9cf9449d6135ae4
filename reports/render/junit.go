package render

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"

	"github.com/gatecheck/gatecheck/reports/model"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr,omitempty"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Status    string `xml:"status,attr"`
	Time      string `xml:"time,attr"`
	// Properties of a testcase (GitLab, Jenkins and GitHub's JUnit actions read them).
	Properties *junitProperties `xml:"properties,omitempty"`
	Failure    *junitProblem    `xml:"failure,omitempty"`
	Error      *junitProblem    `xml:"error,omitempty"`
	Skipped    *junitSkipped    `xml:"skipped,omitempty"`
	SystemOut  *junitText       `xml:"system-out,omitempty"`
}

// junitProperties is a testcase's <properties>; a pointer, because encoding/xml writes an empty
// "properties>property" parent even for a nil slice.
type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

func textOrNil(s string) *junitText {
	if s == "" {
		return nil
	}
	return &junitText{xmlSafe(s)}
}

// xmlSafe replaces what XML 1.0 cannot carry (control characters other than tab and newlines,
// invalid UTF-8), which logs of failing specs do contain, so that the file always parses.
func xmlSafe(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// JUnit writes the report as JUnit XML: one testsuite per Ginkgo suite, one "conformance"
// testsuite with a testcase per profile and support level, and one "conformance tests"
// testsuite with a testcase per upstream test (upstreamSuite).
func JUnit(w io.Writer, r *model.Report) error {
	out := junitSuites{Name: "gatecheck"}
	var total float64
	for _, s := range r.Suites {
		js := junitSuite{Name: s.Name, Package: s.Path, Time: seconds(s.DurationSeconds), Timestamp: stamp(s.Start)}
		js.Properties = runProperties(r.Run)
		for _, sp := range s.Specs {
			c := junitCase{Name: xmlSafe(caseName(sp)), Classname: s.Name, Status: string(sp.Outcome), Time: seconds(sp.DurationSeconds)}
			switch {
			case sp.Outcome.Failed():
				js.Failures++
				c.Failure = problem(sp)
			case sp.Outcome.Broken():
				js.Errors++
				c.Error = problem(sp)
			case sp.Outcome.NotRun():
				js.Skipped++
				c.Skipped = &junitSkipped{Message: xmlSafe(sp.SkipReason)}
			}
			c.SystemOut = textOrNil(systemOut(sp))
			js.Cases = append(js.Cases, c)
		}
		if len(s.FailureReasons) > 0 {
			// Ginkgo failed the suite outside any spec (interrupted, suite timeout, programmatic
			// focus); without a testcase a CI system would show the suite green.
			js.Errors++
			js.Cases = append(js.Cases, junitCase{Name: "[suite] " + xmlSafe(s.Name), Classname: s.Name, Status: "error", Time: seconds(0),
				Error: &junitProblem{Type: "suite", Message: xmlSafe(strings.Join(s.FailureReasons, "; ")), Body: xmlSafe(strings.Join(s.FailureReasons, "\n"))}})
		}
		js.Tests = len(js.Cases)
		total += s.DurationSeconds
		out.Suites = append(out.Suites, js)
	}
	if r.Conformance != nil {
		out.Suites = append(out.Suites, conformanceSuite(r.Conformance))
	}
	if r.Upstream != nil {
		us := upstreamSuite(r.Upstream)
		total += us.seconds
		out.Suites = append(out.Suites, us.junitSuite)
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encode JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

func caseName(sp model.Spec) string {
	if len(sp.Labels) == 0 {
		return sp.Name
	}
	return fmt.Sprintf("%s [%s]", sp.Name, strings.Join(sp.Labels, ", "))
}

func problem(sp model.Spec) *junitProblem {
	p := &junitProblem{Type: string(sp.Outcome)}
	if sp.Failure != nil {
		p.Message = xmlSafe(firstLine(sp.Failure.Message))
		p.Body = sp.Failure.Message
		if sp.Failure.Location != "" {
			p.Body += "\n" + sp.Failure.Location
		}
		if sp.Failure.Panic != "" {
			p.Body += "\npanic: " + sp.Failure.Panic
		}
	}
	p.Body = xmlSafe(p.Body)
	return p
}

func systemOut(sp model.Spec) string {
	var b strings.Builder
	for _, m := range sp.Measurements {
		fmt.Fprintf(&b, "measurement %s\n", m)
	}
	for _, n := range sp.Notes {
		fmt.Fprintf(&b, "%s: %s\n", n.Name, n.Value)
	}
	if sp.Logs != "" {
		b.WriteString(sp.Logs)
		b.WriteString("\n")
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func runProperties(r model.Run) []junitProperty {
	var ps []junitProperty
	add := func(k, v string) {
		if v != "" {
			ps = append(ps, junitProperty{k, v})
		}
	}
	add("gatecheckVersion", r.GatecheckVersion)
	add("implementation", r.Implementation)
	add("gatewayClass", r.GatewayClass)
	add("clusterProvider", r.ClusterProvider)
	add("reachMode", r.ReachMode)
	add("kubernetesVersion", r.KubernetesVersion)
	add("gatewayAPIVersion", r.GatewayAPIVersion)
	add("gatewayAPIChannel", r.GatewayAPIChannel)
	return ps
}

func conformanceSuite(c *model.Conformance) junitSuite {
	cr := c.Report
	js := junitSuite{Name: "conformance", Package: "sigs.k8s.io/gateway-api/conformance", Time: seconds(0)}
	js.Properties = []junitProperty{
		{"gatewayAPIVersion", cr.GatewayAPIVersion},
		{"gatewayAPIChannel", cr.GatewayAPIChannel},
		{"mode", cr.Mode},
		{"implementation", fmt.Sprintf("%s/%s %s", cr.Organization, cr.Project, cr.Version)},
	}
	for _, p := range cr.ProfileReports {
		levels := []profileLevel{{"core", p.Core}}
		if p.Extended != nil {
			levels = append(levels, profileLevel{"extended", p.Extended.Status})
		}
		for _, l := range levels {
			st := l.status
			c := junitCase{Name: p.Name + " " + l.name, Classname: "conformance", Status: string(st.Result), Time: seconds(0)}
			out := fmt.Sprintf("result %s: %d passed, %d failed, %d skipped\n", st.Result, st.Passed, st.Failed, st.Skipped)
			if len(st.SkippedTests) > 0 {
				out += "skipped: " + strings.Join(st.SkippedTests, ", ") + "\n"
			}
			c.SystemOut = textOrNil(out)
			if st.Result == confv1.Failure {
				js.Failures++
				c.Failure = &junitProblem{Type: "failure",
					Message: fmt.Sprintf("%d failed: %s", st.Failed, strings.Join(st.FailedTests, ", ")),
					Body:    p.Summary}
			}
			js.Cases = append(js.Cases, c)
		}
	}
	js.Tests = len(js.Cases)
	return js
}

type profileLevel struct {
	name   string
	status confv1.Status
}

type timedSuite struct {
	junitSuite
	seconds float64
}

// upstreamSuite is the "conformance tests" testsuite: a testcase per upstream test, named as the
// upstream suite names it, classname "conformance.<first profile>" ("conformance" for a test in
// none of the run's profiles), with its profiles, levels and features as properties, so a CI
// system shows the failing test by name. A test that was running when the suite stopped is an
// error; one that never started is skipped, saying so.
func upstreamSuite(u *model.Upstream) timedSuite {
	js := junitSuite{Name: "conformance tests", Package: "sigs.k8s.io/gateway-api/conformance"}
	js.Properties = []junitProperty{{"partial", fmt.Sprint(u.Partial)}}
	if u.Reason != "" {
		js.Properties = append(js.Properties, junitProperty{"reason", xmlSafe(u.Reason)})
	}
	var total float64
	for _, t := range u.Tests {
		class := "conformance"
		var names, levels []string
		for _, p := range t.Profiles {
			names = append(names, p.Name)
			levels = append(levels, p.Name+":"+p.Level)
		}
		if len(names) > 0 {
			class += "." + names[0]
		}
		c := junitCase{Name: xmlSafe(t.Name), Classname: class, Status: string(t.Result), Time: seconds(t.DurationSeconds)}
		c.Properties = &junitProperties{}
		add := func(k, v string) {
			if v != "" {
				c.Properties.Property = append(c.Properties.Property, junitProperty{k, xmlSafe(v)})
			}
		}
		add("profile", strings.Join(names, ","))
		add("level", upstreamLevel(t.Profiles, levels))
		add("features", strings.Join(t.Features, ","))
		if t.Provisional {
			add("provisional", "true")
		}
		add("description", t.Description)
		if len(c.Properties.Property) == 0 {
			c.Properties = nil
		}
		switch t.Result {
		case model.UpstreamFailed:
			js.Failures++
			msg := t.Name + " failed"
			if t.Message != "" {
				msg = firstLine(t.Message)
			}
			c.Failure = &junitProblem{Type: "failure", Message: xmlSafe(msg), Body: xmlSafe(t.Message)}
		case model.UpstreamRunning:
			js.Errors++
			c.Error = &junitProblem{Type: "interrupted", Message: "the test was running when the upstream suite stopped",
				Body: xmlSafe(u.Reason)}
		case model.UpstreamSkipped:
			js.Skipped++
			c.Skipped = &junitSkipped{Message: xmlSafe(t.SkipReason)}
		case model.UpstreamNotStarted:
			js.Skipped++
			msg := "never started: the upstream suite stopped before it"
			if t.SkipReason != "" {
				msg += " (it would have been skipped: " + t.SkipReason + ")"
			}
			c.Skipped = &junitSkipped{Message: xmlSafe(msg)}
		}
		total += t.DurationSeconds
		js.Cases = append(js.Cases, c)
	}
	js.Tests = len(js.Cases)
	js.Time = seconds(total)
	return timedSuite{js, total}
}

// upstreamLevel is "core" or "extended" when the test has one level in all its profiles, else
// each profile's ("GATEWAY-HTTP:core,GATEWAY-TLS:extended").
func upstreamLevel(ps []model.UpstreamProfile, each []string) string {
	if len(ps) == 0 {
		return ""
	}
	for _, p := range ps[1:] {
		if p.Level != ps[0].Level {
			return strings.Join(each, ",")
		}
	}
	return ps[0].Level
}
