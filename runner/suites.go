package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/impls"
)

// ConformanceSuite is the name of the upstream suite in --suites.
const ConformanceSuite = "conformance"

// DiscoverSuites lists gatecheck's Ginkgo suites: directories under suites/ with a
// suite_test.go, except internal helpers and the upstream wrapper.
func DiscoverSuites(root string) []string {
	m, _ := filepath.Glob(filepath.Join(root, "suites", "*", "suite_test.go"))
	var out []string
	for _, p := range m {
		name := filepath.Base(filepath.Dir(p))
		if name != "internal" && name != ConformanceSuite {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// SelectSuites resolves --suites ("all", or a comma list) against what exists; an unknown name
// is an error that lists the known ones.
func SelectSuites(root, spec string) ([]string, error) {
	known := append([]string{ConformanceSuite}, DiscoverSuites(root)...)
	if spec == "" || spec == "all" {
		return known, nil
	}
	set := map[string]bool{}
	for _, k := range known {
		set[k] = true
	}
	var out []string
	for _, s := range strings.Split(spec, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !set[s] {
			return nil, fmt.Errorf("--suites: unknown suite %q (known: %s)", s, strings.Join(known, ", "))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--suites: %q names no suite (known: %s)", spec, strings.Join(known, ", "))
	}
	return out, nil
}

// compileTest builds a suite's test binary once (go test -c), so running it does not recompile.
func compileTest(ctx context.Context, root, pkg, out string, tags string, w io.Writer) error {
	args := []string{"test", "-c", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, pkg)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("compile %s: go %s: %w\n%s", pkg, strings.Join(args, " "), err, b)
	}
	fmt.Fprintf(w, "  compiled %s in %s\n", pkg, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// runStreaming runs a test binary, writing all output to logPath and passing lines that
// match keep to w (prefixed), so the console shows progress without the full log.
func runStreaming(ctx context.Context, bin string, args, env []string, dir, logPath string, w io.Writer, prefix string, keep func(string) bool) error {
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
			if keep(line) {
				fmt.Fprintf(w, "  %s %s\n", prefix, strings.TrimSpace(line))
			}
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
	if c.TimeoutOverrides != "" {
		args = append(args, "--timeout-config-overrides="+c.TimeoutOverrides)
	}
	if debug {
		args = append(args, "--debug")
	}
	return args
}

// conformanceProgress keeps the upstream suite's per-test start and verdict lines. Go prints
// subtest verdicts only when the parent test ends, so the start lines are what shows progress
// while the suite runs.
func conformanceProgress(line string) bool {
	t := strings.TrimSpace(line)
	if !(strings.HasPrefix(t, "--- PASS") || strings.HasPrefix(t, "--- FAIL") || strings.HasPrefix(t, "--- SKIP") ||
		strings.HasPrefix(t, "=== RUN")) {
		return false
	}
	// Top-level tests only: TestConformance/<Name> without deeper subtests.
	return strings.Count(t, "/") <= 1
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
