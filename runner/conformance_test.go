package runner

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/reports/render"
)

const recorded = "../reports/ingest/testdata/upstream/"

// stage copies a recorded run's files (events, log, and the suite's report when it wrote one)
// into a fresh output directory, as the suite would have left them.
func stage(t *testing.T, name string) (dir, confYAML, events, logPath string) {
	t.Helper()
	dir = t.TempDir()
	confYAML, events, logPath = filepath.Join(dir, "conformance-report.yaml"), filepath.Join(dir, conformanceEventsFile), filepath.Join(dir, "conformance.log")
	cp := func(from, to string) {
		b, err := os.ReadFile(recorded + from)
		if err != nil {
			if os.IsNotExist(err) {
				return
			}
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cp(name+".jsonl", events)
	cp(name+".log", logPath)
	cp(name+".conformance-report.yaml", confYAML)
	return dir, confYAML, events, logPath
}

// finish does what Run does after the suites: combine, gate, render; and returns the gate's code.
func finish(t *testing.T, dir string, part *model.Report, incomplete []string) (int, []string) {
	t.Helper()
	rep, err := ingest.Combine(part, &model.Report{Run: model.Run{Incomplete: incomplete}})
	if err != nil {
		t.Fatal(err)
	}
	code, reasons := gate.Default().Apply(rep, "default")
	if _, err := render.WriteAll(dir, rep); err != nil {
		t.Fatal(err)
	}
	return code, reasons
}

type junitDoc struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Status    string `xml:"status,attr"`
			Props     []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

func TestCollectConformanceComplete(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"complete", "failing"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, confYAML, events, logPath := stage(t, name)
			suiteYAML, _ := os.ReadFile(confYAML)
			part, incomplete := collectConformance(false, nil, confYAML, events, logPath, "standard", io.Discard)
			if len(incomplete) > 0 {
				t.Errorf("incomplete %q; want none", incomplete)
			}
			if part.Conformance == nil || part.Conformance.Partial || part.Upstream == nil || part.Upstream.Partial {
				t.Fatalf("got conformance %+v upstream %+v; want the suite's report and a complete record", part.Conformance, part.Upstream)
			}
			code, reasons := finish(t, dir, part, incomplete)
			if got, _ := os.ReadFile(filepath.Join(dir, render.ConformanceFile)); !bytes.Equal(got, suiteYAML) {
				t.Errorf("conformance-report.yaml was not written back byte for byte")
			}
			// Both are 1: FakeSkipped (--skip-tests) leaves core partial, which the default
			// gate fails; the failing run also has FakeFail.
			want := 1
			if name == "failing" {
				var fail *model.UpstreamTest
				for i := range part.Upstream.Tests {
					if part.Upstream.Tests[i].Name == "FakeFail" {
						fail = &part.Upstream.Tests[i]
					}
				}
				if fail == nil || !strings.Contains(fail.Message, "Error: backend answered 503; want 200") {
					t.Errorf("FakeFail message %q; want the error from the log", fail.Message)
				}
			}
			if code != want || !strings.Contains(strings.Join(reasons, "\n"), "profile FAKE-HTTP core") {
				t.Errorf("gate exit %d %q; want %d naming FAKE-HTTP core", code, reasons, want)
			}
		})
	}
}

// The run was interrupted while FakeBlock ran: the tests that finished keep their results, a
// partial ConformanceReport is written, the gate says 2, junit has a testcase per upstream
// test, and a re-render from report.json gives the same files.
func TestCollectConformanceInterrupted(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"interrupted", "crash"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, confYAML, events, logPath := stage(t, name)
			if name == "crash" {
				b, _ := os.ReadFile(recorded + "interrupted.log")
				_ = os.WriteFile(logPath, b, 0o644)
			}
			part, incomplete := collectConformance(true, context.Canceled, confYAML, events, logPath, "standard", io.Discard)
			if len(incomplete) != 1 || !strings.Contains(incomplete[0], "running: FakeBlock") || !strings.Contains(incomplete[0], "the ConformanceReport is partial") {
				t.Errorf("incomplete %q; want one reason naming the running test and the partial report", incomplete)
			}
			if part.Conformance == nil || !part.Conformance.Partial || !part.Upstream.Partial {
				t.Fatalf("conformance %+v; want a partial report", part.Conformance)
			}
			written, err := os.ReadFile(confYAML)
			if err != nil || !bytes.HasPrefix(written, []byte(model.PartialConformanceMarker)) {
				t.Fatalf("conformance-report.yaml: %v, starts %.80q; want the partial marker", err, written)
			}
			if code, _ := finish(t, dir, part, incomplete); code != 2 {
				t.Errorf("gate exit %d; want 2", code)
			}
			d := readJUnit(t, filepath.Join(dir, render.JUnitFile))
			got := map[string]string{}
			for _, s := range d.Suites {
				if s.Name != "conformance tests" {
					continue
				}
				for _, c := range s.Cases {
					got[c.Name] = c.Status
					if c.Name == "FakeExtended" {
						props := map[string]string{}
						for _, p := range c.Props {
							props[p.Name] = p.Value
						}
						if c.Classname != "conformance.FAKE-HTTP" || props["profile"] != "FAKE-HTTP" || props["level"] != "extended" ||
							props["features"] != "HTTPRoute,HTTPRouteResponseHeaderModification" {
							t.Errorf("FakeExtended: classname %q properties %v", c.Classname, props)
						}
					}
					if c.Name == "FakeFail" && (c.Failure == nil || !strings.Contains(c.Failure.Message, "backend answered 503")) {
						t.Errorf("FakeFail testcase failure %+v; want the log's error", c.Failure)
					}
					if c.Name == "FakeBlock" && c.Error == nil {
						t.Errorf("FakeBlock (running at the interrupt) has no <error>")
					}
				}
			}
			for test, status := range map[string]string{"FakePass": "passed", "FakeFail": "failed", "FakeSkipped": "skipped",
				"FakeBlock": "running", "FakeAfter": "notStarted"} {
				if got[test] != status {
					t.Errorf("junit testcase %s: status %q; want %q (all: %v)", test, got[test], status, got)
				}
			}
			html, _ := os.ReadFile(filepath.Join(dir, render.HTMLFile))
			for _, want := range []string{`id="upstream-partial"`, "running at stop", "never started", "FakeAfter"} {
				if !bytes.Contains(html, []byte(want)) {
					t.Errorf("report.html lacks %q", want)
				}
			}

			// Re-render from report.json, as `gatecheck report` does.
			saved, err := ingest.ReadFile(filepath.Join(dir, render.JSONFile))
			if err != nil {
				t.Fatal(err)
			}
			again := t.TempDir()
			rep, err := ingest.Combine(saved)
			if err != nil {
				t.Fatal(err)
			}
			if code, _ := gate.Default().Apply(rep, "default"); code != 2 {
				t.Errorf("re-gated exit %d; want 2", code)
			}
			if _, err := render.WriteAll(again, rep); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{render.JUnitFile, render.HTMLFile, render.ConformanceFile, render.JSONFile} {
				a, _ := os.ReadFile(filepath.Join(dir, f))
				b, _ := os.ReadFile(filepath.Join(again, f))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs after a re-render from report.json", f)
				}
			}
		})
	}
}

func TestCollectConformanceNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	part, incomplete := collectConformance(true, context.Canceled, filepath.Join(dir, "c.yaml"), filepath.Join(dir, "e.jsonl"), filepath.Join(dir, "l.log"), "standard", io.Discard)
	if part != nil || len(incomplete) != 1 || !strings.Contains(incomplete[0], "interrupted before it planned its tests") {
		t.Errorf("got %+v %q; want nothing and one reason", part, incomplete)
	}
}

const envHelperEvents = "GATECHECK_TEST_HELPER_EVENTS"

// TestHelperFakeConformance stands in for the conformance binary: it appends the recorded
// interrupted run's events one by one to $GATECHECK_CONFORMANCE_EVENTS, then blocks in FakeBlock
// until it is interrupted.
func TestHelperFakeConformance(t *testing.T) {
	src := os.Getenv(envHelperEvents)
	if src == "" {
		t.Skip("helper process of TestRunStreamingInterruptKeepsEvents")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(os.Getenv(model.UpstreamEventsEnv), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.Stdout.WriteString("=== RUN   TestConformance/FakeBlock\n")
	time.Sleep(time.Minute)
}

// A real process writing events and stopped the way Ctrl-C stops the suite (the run's context
// ends; runStreaming sends SIGINT): what it wrote becomes the upstream record.
func TestRunStreamingInterruptKeepsEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events, confYAML, logPath := filepath.Join(dir, conformanceEventsFile), filepath.Join(dir, "conformance-report.yaml"), filepath.Join(dir, "conformance.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if b, _ := os.ReadFile(events); bytes.Contains(b, []byte(`"event":"start","time":"2026-12-02T05:33:16.923468629Z","test":"FakeBlock"`)) {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	rerr := runStreaming(ctx, os.Args[0], []string{"-test.run", "^TestHelperFakeConformance$", "-test.v"},
		[]string{envHelperEvents + "=" + recorded + "interrupted.jsonl", model.UpstreamEventsEnv + "=" + events}, ".", logPath, io.Discard, "conformance:", newConformanceConsole(time.Now))
	if rerr == nil || time.Since(start) > 20*time.Second {
		t.Fatalf("helper: err %v after %v; want it interrupted at once", rerr, time.Since(start))
	}
	part, incomplete := collectConformance(ctx.Err() != nil, rerr, confYAML, events, logPath, "standard", io.Discard)
	if part == nil || part.Upstream == nil {
		t.Fatalf("no upstream record; incomplete %q", incomplete)
	}
	c := part.Upstream.Counts()
	if c[model.UpstreamPassed] != 3 || c[model.UpstreamFailed] != 1 || c[model.UpstreamSkipped] != 2 || c[model.UpstreamRunning] != 1 || c[model.UpstreamNotStarted] != 2 {
		t.Errorf("counts %v; want 3 passed, 1 failed, 2 skipped, 1 running, 2 not started", c)
	}
	if len(incomplete) != 1 || !strings.HasPrefix(incomplete[0], "conformance suite did not complete") || !strings.Contains(incomplete[0], "interrupted: ") {
		t.Errorf("incomplete %q", incomplete)
	}
}
