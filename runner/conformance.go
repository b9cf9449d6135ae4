package runner

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
)

// conformanceEventsFile is the upstream suite's per-test events, in the output directory.
const conformanceEventsFile = "conformance-events.jsonl"

// conformanceCommand is the one place that says how the upstream suite is started: the gatecheck
// binary's ConformanceCommand entry point, which runs conformance.Test under a real *testing.T
// (internal/testmain), run in the output directory with args in front of conformanceArgs.
func conformanceCommand(o Options) (bin string, args []string, dir string) {
	return o.self(), []string{ConformanceCommand}, o.OutDir
}

// runConformance runs the upstream suite and returns what it produced: its ConformanceReport
// and per-test record, and why the run is incomplete. The suite streams an event per test into
// conformance-events.jsonl, so however it ends (passed, failed, interrupted, crashed) the tests
// that finished keep their results. Without a ConformanceReport of its own, a partial one is
// built from the events and written to conformance-report.yaml, marked partial; the run is
// then incomplete (exit 2), never a pass.
//
// firstTest, when not nil, is called when the suite's first test starts: its setup is done.
func runConformance(ctx context.Context, o Options, kubeconfig, channel string, out io.Writer, firstTest func()) (part *model.Report, incomplete []string) {
	bin, pre, dir := conformanceCommand(o)
	confYAML := filepath.Join(o.OutDir, "conformance-report.yaml")
	eventsPath := filepath.Join(o.OutDir, conformanceEventsFile)
	logPath := filepath.Join(o.OutDir, "logs", "conformance.log")
	// A report or events left by an earlier run in the same directory must not pass for this one's.
	for _, p := range []string{confYAML, eventsPath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, []string{fmt.Sprintf("conformance: remove stale %s: %v", p, err)}
		}
	}
	fmt.Fprintf(out, "  running; full log: %s; per-test events: %s\n", logPath, eventsPath)
	args := append(pre, conformanceArgs(o.Profile, confYAML, false)...)
	env := []string{"KUBECONFIG=" + kubeconfig, model.UpstreamEventsEnv + "=" + eventsPath}
	if len(o.pushed) > 0 {
		// The suite's own manifests name registry.k8s.io images: it rewrites them (--registry).
		env = append(env, imagemap.Env+"="+o.pushed.String())
	}
	con := newConformanceConsole(time.Now)
	con.onFirstTest = firstTest
	rerr := runStreaming(ctx, bin, args, env, dir, logPath, out, "conformance:", con)
	part, incomplete = collectConformance(ctx.Err() != nil, rerr, confYAML, eventsPath, logPath, channel, out)
	if part != nil && part.Conformance != nil {
		// The profile's documented failures travel with the ConformanceReport they excuse.
		part.Conformance.KnownFailures = knownFailures(o.Profile)
	}
	return part, incomplete
}

// collectConformance reads what the suite left: its ConformanceReport (confYAML), its events
// and its log. interrupted says the run's context ended; rerr is how the suite's process ended.
func collectConformance(interrupted bool, rerr error, confYAML, eventsPath, logPath, channel string, out io.Writer) (*model.Report, []string) {
	part := &model.Report{}
	var incomplete []string
	up, plan, eerr := ingest.ReadConformanceEvents(eventsPath)
	if eerr == nil {
		addFailureOutput(up, logPath)
		part.Upstream = up
		c := up.Counts()
		fmt.Fprintf(out, "  upstream tests: %d passed, %d failed, %d skipped, %d running, %d never started\n",
			c[model.UpstreamPassed], c[model.UpstreamFailed], c[model.UpstreamSkipped], c[model.UpstreamRunning], c[model.UpstreamNotStarted])
	}
	cr, perr := ingest.ReadConformanceFile(confYAML)
	switch {
	case perr == nil:
		part.Conformance = cr
		if up != nil && up.Partial {
			// The report was written, then the process was stopped before its done event.
			up.Partial, up.Reason = false, ""
		}
		if rerr != nil {
			fmt.Fprintf(out, "  conformance suite exited %d (verdicts are in the report)\n", exitCodeOf(rerr))
		}
		return part, nil
	case eerr != nil:
		// Nothing to build a report from.
		why := fmt.Sprintf("conformance suite wrote no report (exit %d, see %s): %v; and no per-test events: %v", exitCodeOf(rerr), logPath, perr, eerr)
		if interrupted {
			why = "conformance suite interrupted before it planned its tests (no report, no events: " + eerr.Error() + ")"
		}
		if part.Upstream == nil {
			part = nil
		}
		return part, []string{why}
	}
	if !up.Partial {
		// The suite ended (done event) without a report: it failed at its end (report cleanup).
		up.Partial = true
		up.Reason = fmt.Sprintf("the upstream suite ended (exit %d) without writing its ConformanceReport: %v", exitCodeOf(rerr), perr)
	}
	if interrupted {
		up.Reason = "interrupted: " + up.Reason
	}
	partial, err := ingest.PartialConformance(plan, up, channel, time.Now().UTC())
	if err != nil {
		return part, append(incomplete, "conformance: "+err.Error())
	}
	if err := os.WriteFile(confYAML, []byte(partial.Raw), 0o644); err != nil {
		incomplete = append(incomplete, fmt.Sprintf("conformance: write partial report %s: %v", confYAML, err))
	}
	part.Conformance = partial
	running := []string{}
	for _, t := range up.Tests {
		if t.Result == model.UpstreamRunning {
			running = append(running, t.Name)
		}
	}
	why := fmt.Sprintf("conformance suite did not complete (exit %d, see %s): %s; the ConformanceReport is partial", exitCodeOf(rerr), logPath, up.Reason)
	if len(running) > 0 {
		why += "; running: " + strings.Join(running, ", ")
	}
	fmt.Fprintf(out, "  wrote a PARTIAL ConformanceReport from the finished tests: %s\n", confYAML)
	return part, append(incomplete, why)
}

// addFailureOutput gives each failed test the output it logged, read from the suite's verbose
// log (go test -v prints a test's log lines as they happen, under "=== RUN/NAME/CONT <test>").
func addFailureOutput(up *model.Upstream, logPath string) {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return
	}
	outputs := testOutputs(data)
	for i, t := range up.Tests {
		if t.Result == model.UpstreamFailed && t.Message == "" {
			up.Tests[i].Message = failureExcerpt(outputs[t.Name])
		}
	}
}

// testOutputs splits a `go test -v` log of the suite into each upstream test's lines.
func testOutputs(log []byte) map[string][]string {
	out := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		header := false
		for _, p := range []string{"=== RUN", "=== NAME", "=== CONT", "=== PAUSE"} {
			if rest, ok := strings.CutPrefix(t, p); ok {
				header = true
				name := strings.TrimSpace(rest)
				cur = ""
				// <top-level test>/<upstream test>[/<subtest>]: whatever the top-level test is
				// called (TestConformance under go test).
				if _, sub, ok := strings.Cut(name, "/"); ok {
					cur, _, _ = strings.Cut(sub, "/")
				}
			}
		}
		if header || cur == "" {
			continue
		}
		if strings.HasPrefix(t, "--- ") || t == "PASS" || t == "FAIL" {
			cur = ""
			continue
		}
		out[cur] = append(out[cur], line)
	}
	return out
}

// failureExcerpt keeps what explains a failure: from the first assertion error on (testify's
// "Error Trace:"/"Error:"), else the last lines, at most maxExcerpt lines.
func failureExcerpt(lines []string) string {
	const maxExcerpt = 40
	from := -1
	for i, l := range lines {
		if strings.Contains(l, "Error Trace:") || strings.Contains(l, "Error:") {
			from = i
			break
		}
	}
	if from < 0 {
		from = max(0, len(lines)-maxExcerpt/2)
	}
	lines = lines[from:]
	if len(lines) > maxExcerpt {
		lines = append(lines[:maxExcerpt:maxExcerpt], fmt.Sprintf("... %d more lines in the log", len(lines)-maxExcerpt))
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// knownFailures are the profile's documented upstream failures, as the report carries them.
func knownFailures(p *impls.Profile) []model.KnownFailure {
	var out []model.KnownFailure
	for _, k := range p.Conformance.KnownFailures {
		out = append(out, model.KnownFailure{Test: k.Test, Reason: k.Reason})
	}
	return out
}
