package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/suites/all"
)

// ConformanceSuite is the name of the upstream suite in --suites.
const ConformanceSuite = "conformance"

// The hidden entry points of the gatecheck binary that the runner starts the suites with
// (cmd/gatecheck/selfexec.go): a run compiles nothing, and an installed gatecheck needs no
// source tree.
const (
	// SuiteCommand NAME [-ginkgo.* flags] runs one gatecheck suite (suites/all).
	SuiteCommand = "__suite"
	// ConformanceCommand [upstream and -test.* flags] runs the upstream suite as go test would.
	ConformanceCommand = "__conformance"
)

// self is the executable that has the hidden entry points.
func (o Options) self() string {
	if o.Self != "" {
		return o.Self
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return os.Args[0]
}

// SelectSuites resolves --suites ("all", or a comma list) against the suites this binary
// carries; an unknown name is an error that lists the known ones.
func SelectSuites(spec string) ([]string, error) {
	known := append([]string{ConformanceSuite}, all.Names()...)
	if spec == "" || spec == "all" {
		return known, nil
	}
	var out []string
	for _, s := range strings.Split(spec, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("--suites: unknown suite %q (known: %s)", s, strings.Join(known, ", "))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--suites: %q names no suite (known: %s)", spec, strings.Join(known, ", "))
	}
	return out, nil
}

// console turns a test binary's output into the lines the console shows.
type console interface {
	line(string) []string
	// flush is called at the end of the output.
	flush() []string
}

// runStreaming runs a test binary, writing all output to logPath and to w (prefixed) what
// con makes of it, so the console shows progress without the full log.
func runStreaming(ctx context.Context, bin string, args, env []string, dir, logPath string, w io.Writer, prefix string, con console) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	// On Ctrl-C the context ends; give the suite a moment to run its cleanups before SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			for _, l := range con.line(line) {
				fmt.Fprintf(w, "  %s %s\n", prefix, strings.TrimSpace(l))
			}
		}
		for _, l := range con.flush() {
			fmt.Fprintf(w, "  %s %s\n", prefix, l)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	wg.Wait()
	return err
}

// conformanceArgs builds the upstream suite's flags from the profile.
func conformanceArgs(p *impls.Profile, reportPath string, debug bool) []string {
	c := p.Conformance
	args := []string{
		"-test.v", "-test.timeout", "90m", "-test.run", "^TestConformance$",
		"--gateway-class=" + p.GatewayClass.Name,
		"--cleanup-base-resources=true",
		"--report-output=" + reportPath,
		"--organization=" + c.Report.Organization,
		"--project=" + c.Report.Project,
		"--url=" + c.Report.URL,
		"--version=" + c.Report.Version,
		"--contact=" + strings.Join(c.Report.Contact, ","),
	}
	if c.Parallel > 0 {
		args = append(args, "-test.parallel", strconv.Itoa(c.Parallel))
	}
	if len(c.Profiles) > 0 {
		args = append(args, "--conformance-profiles="+strings.Join(c.Profiles, ","))
	}
	if len(c.SupportedFeatures) > 0 {
		args = append(args, "--supported-features="+strings.Join(c.SupportedFeatures, ","))
	}
	if len(c.ExemptFeatures) > 0 {
		args = append(args, "--exempt-features="+strings.Join(c.ExemptFeatures, ","))
	}
	if len(c.SkipTests) > 0 {
		args = append(args, "--skip-tests="+strings.Join(c.SkipTests, ","))
	}
	// The rest of the suite's options (impls.SuiteOptions), each only when the profile sets it
	// so that the suite's own default (or the options file) applies otherwise.
	for _, f := range []struct{ flag, value string }{
		{"run-test", c.RunTest},
		{"mode", c.Mode},
		{"skip-provisional-tests", map[bool]string{true: "true"}[c.SkipProvisionalTests]},
		{"allow-crds-mismatch", map[bool]string{true: "true"}[c.AllowCRDsMismatch]},
		{"usable-address", c.UsableAddress},
		{"unusable-address", c.UnusableAddress},
		{"namespace-labels", c.NamespaceLabelsFlag()},
		{"timeout-config-overrides", c.TimeoutOverrides()},
		{"conformance-options-file", c.OptionsPath(p.Dir)},
	} {
		if f.value != "" {
			args = append(args, "--"+f.flag+"="+f.value)
		}
	}
	if debug {
		args = append(args, "--debug")
	}
	return args
}

// keepLines is a console that prints the lines keep keeps, as they are.
type keepLines func(string) bool

func (k keepLines) line(l string) []string {
	if k(l) {
		return []string{l}
	}
	return nil
}

func (keepLines) flush() []string { return nil }

// conformanceConsole condenses the upstream suite's verbose output for the console. The suite
// runs ~180 top-level tests, most of them skipped for features a profile does not claim, and
// Go prints the subtests' verdicts only when TestConformance ends; printing every start line
// buried the few that matter. So it prints a progress line (tests started, elapsed, the one
// running) at most every progressEvery, failures as soon as Go prints them, and at the end
// the counts of passed, failed and skipped tests.
//
// Tests that call t.Parallel pause ("=== PAUSE") and run together after the serial ones
// ("=== CONT"); Go prints no verdict for any of them before the suite ends. Once they resume,
// the progress line says so (how many of the paused tests have resumed, the latest), instead
// of naming the last serial test, which has long finished.
type conformanceConsole struct {
	now                     func() time.Time
	start, last             time.Time
	started                 int
	running                 string
	paused, resumed         int
	passed, failed, skipped int
	// onFirstTest, when set, is called when the first test starts (the suite's setup is done).
	onFirstTest func()
}

const progressEvery = 15 * time.Second

func newConformanceConsole(now func() time.Time) *conformanceConsole {
	t := now()
	return &conformanceConsole{now: now, start: t, last: t}
}

func (c *conformanceConsole) line(line string) []string {
	t := strings.TrimSpace(line)
	var out []string
	name, verdict := "", ""
	for _, v := range []string{"=== RUN", "=== PAUSE", "=== CONT", "--- PASS:", "--- FAIL:", "--- SKIP:"} {
		if rest, ok := strings.CutPrefix(t, v); ok {
			verdict = v
			name, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
		}
	}
	// Top-level conformance tests only: TestConformance/<Name>, not their subtests.
	if test, ok := strings.CutPrefix(name, "TestConformance/"); ok && !strings.Contains(test, "/") {
		switch verdict {
		case "=== RUN":
			c.started++
			c.running = test
			if c.started == 1 && c.onFirstTest != nil {
				c.onFirstTest()
			}
		case "=== PAUSE":
			c.paused++
		case "=== CONT":
			c.resumed++
			c.running = test
		case "--- PASS:":
			c.passed++
		case "--- SKIP:":
			c.skipped++
		case "--- FAIL:":
			c.failed++
			out = append(out, t)
		}
	}
	if now := c.now(); c.started > 0 && verdict == "" && now.Sub(c.last) >= progressEvery {
		c.last = now
		progress := fmt.Sprintf("%s started in %v; ", tests(c.started), now.Sub(c.start).Round(time.Second))
		if c.resumed > 0 {
			progress += fmt.Sprintf("parallel tests: %d of %d resumed, latest %s", c.resumed, c.paused, c.running)
		} else {
			progress += "running " + c.running
		}
		out = append(out, progress)
	}
	return out
}

func (c *conformanceConsole) flush() []string {
	n := c.passed + c.failed + c.skipped
	if n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s: %d passed, %d failed, %d skipped (features not claimed or not in the profiles) in %v",
		tests(n), c.passed, c.failed, c.skipped, c.now().Sub(c.start).Round(time.Second))}
}

func tests(n int) string {
	if n == 1 {
		return "1 test"
	}
	return fmt.Sprintf("%d tests", n)
}

// ginkgoProgress returns a filter that keeps, from Ginkgo's verbose output, the name of each
// spec as it starts (the line after a separator) and the verdict lines and summary.
func ginkgoProgress() func(string) bool {
	afterSeparator := false
	return func(line string) bool {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "------------------------------") {
			afterSeparator = true
			return false
		}
		if afterSeparator {
			afterSeparator = false
			if t != "" && !strings.HasPrefix(t, "•") && !strings.HasPrefix(t, "[") {
				return true
			}
		}
		for _, p := range []string{"• [FAILED]", "• [PANICKED]", "• [TIMEDOUT]", "[FAIL]", "[PANICKED]", "[SKIPPED]", "S [SKIPPED]", "Ran ", "SUCCESS!", "FAIL!", "Summarizing"} {
			if strings.HasPrefix(t, p) {
				return true
			}
		}
		return false
	}
}

// exitCodeOf returns the process exit code of a run error, or -1.
func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}
