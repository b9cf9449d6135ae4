package render_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/reports/render"
)

// gated is the recorded report with the default gate's verdict, as `gatecheck report` renders it.
func gated(t *testing.T) *model.Report {
	r := recorded(t)
	code, reasons := gate.Evaluate(r)
	r.Gate = &model.GateResult{File: "built-in default", Code: code, Reasons: reasons}
	return r
}

func renderHTML(t *testing.T, r *model.Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := render.HTML(&buf, r); err != nil {
		t.Fatalf("render HTML: %v", err)
	}
	return buf.String()
}

var chartKinds = []string{"split", "latency", "cdf", "gantt"}

func TestHTMLStatic(t *testing.T) {
	t.Parallel()
	page := renderHTML(t, gated(t))
	for _, want := range []string{
		`id="summary"`, `id="suite-summary"`, `id="profile-summary"`, `id="failures"`, `id="gate"`, `id="verdict"`,
		"gatecheck traffic", "gatecheck sidecars", "GATEWAY-HTTP", "GRPCRouteListenerHostnameMatching",
		"mirror isolation: baseline vs with slow mirror", "pod termination: legacy vs native sidecar",
		"backend infra-backend-v2: 804 responses", // the failing spec's log
		"&lt;model.Decision&gt;: fail",            // its failure message, escaped
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, kind := range chartKinds {
		if n := strings.Count(page, `class="chart chart-`+kind+`"`); n == 0 {
			t.Errorf("HTML has no %s chart", kind)
		}
	}
	// Self-contained: nothing may be fetched when the page opens.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<link\b`), regexp.MustCompile(`(?i)\bsrc\s*=`), regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)url\(`), regexp.MustCompile(`(?i)href\s*=\s*"(https?:)?//`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("HTML loads an outside resource: %q", page[max(0, loc[0]-40):min(len(page), loc[1]+40)])
		}
	}
}

// Every measurement kind with hostile or degenerate values must still render valid markup.
func TestHTMLDegenerateMeasurements(t *testing.T) {
	t.Parallel()
	evil := `<script>alert(1)</script>`
	nan := func() float64 { var z float64; return z / z }()
	sp := model.Spec{Name: evil, Outcome: model.OutcomeFailed, Failure: &model.Failure{Message: evil}, Logs: evil}
	for _, v := range []model.Value{
		&model.WeightVerdict{},
		&model.WeightVerdict{N: 0, Backends: []model.WeightShare{{Backend: evil, Lo: nan, Hi: 2, Share: -1}}},
		&model.LatencyHistograms{},
		&model.LatencyHistograms{Series: []model.LatencyHistogram{{Label: evil}, {Label: "one", Count: 1, Buckets: []model.Bucket{{LowerMs: 0, UpperMs: 0, Count: 1}}, P50Ms: nan}}},
		&model.Propagation{Series: []model.PropagationSeries{{Label: evil}, {Label: "x", SamplesMs: []float64{nan, 3, -1}}}},
		&model.SidecarTimelines{Variants: []model.SidecarTimeline{{Variant: evil, Containers: []model.ContainerTimeline{{Name: evil, Events: []model.ContainerEvent{{Kind: model.EventExit, TimeMs: nan}, {Kind: model.EventSigterm, TimeMs: -5}}}}}}},
	} {
		m := model.New(evil, v)
		sp.Measurements = append(sp.Measurements, m)
		// And once more with the NaNs New removed put back, as a caller could build it by hand.
		m.Warnings = nil
		switch p := v.(type) {
		case *model.WeightVerdict:
			c := *p
			c.PValue = nan
			m.Weight = &c
		case *model.LatencyHistograms:
			c := *p
			c.Series = append(c.Series, model.LatencyHistogram{Label: "nan", Count: 2, MaxMs: nan, Buckets: []model.Bucket{{LowerMs: nan, UpperMs: nan, Count: 2}}})
			m.Latency = &c
		case *model.Propagation:
			c := *p
			c.Series = append(c.Series, model.PropagationSeries{Label: "nan", SamplesMs: []float64{nan, nan}})
			m.Propagation = &c
		}
		sp.Measurements = append(sp.Measurements, m)
	}
	r := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{{Name: evil, Specs: []model.Spec{sp}}}}
	page := renderHTML(t, r)
	if strings.Contains(page, evil) {
		t.Errorf("HTML contains an unescaped <script> from report data")
	}
	if m := regexp.MustCompile(`="[^"]*(NaN|Inf)[^"]*"`).FindString(page); m != "" {
		t.Errorf("HTML has a NaN or Inf attribute: %s", m)
	}
}

// TestHTMLInChromium opens the page in headless Chromium and reads back, from the DOM after the
// page's script ran, that the summary is there and that every chart was laid out with a size.
func TestHTMLInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("opens Chromium; skipped with -short")
	}
	browser := chromium(t)
	dir := t.TempDir()
	r := gated(t)
	page := renderHTML(t, r)
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1400,1000", "--virtual-time-budget=5000",
		"--dump-dom", "file://"+file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom: %v (after %s)\nstderr:\n%s", browser, err, time.Since(start).Round(time.Millisecond), tail(stderr.String(), 2000))
	}
	t.Logf("chromium rendered the page in %s", time.Since(start).Round(time.Millisecond))
	body := regexp.MustCompile(`<body[^>]*>`).FindString(string(dom))
	if !strings.Contains(body, `data-ready="true"`) {
		t.Fatalf("the page's script did not run; <body> is %s", body)
	}
	attr := func(name string) string {
		m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("<body> has no %s: %s", name, body)
		}
		return m[1]
	}
	total, _ := strconv.Atoi(attr("data-charts-total"))
	drawn, _ := strconv.Atoi(attr("data-charts-drawn"))
	if want := strings.Count(page, `class="chart chart-`); total != want || drawn != want {
		t.Errorf("charts drawn: %d of %d; want all %d", drawn, total, want)
	}
	kinds := attr("data-chart-kinds")
	for _, k := range chartKinds {
		if !strings.Contains(kinds, k+":") {
			t.Errorf("no %s chart was drawn with a visible size; drawn kinds: %s", k, kinds)
		}
	}
	for _, want := range []string{`id="summary"`, `id="suite-summary"`, `id="profile-summary"`, `id="failures"`, "of 8 charts drawn"} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
}

// chromium finds the Chromium binary, installing the Debian package when running as root, and
// skips the test with the reason when it can do neither.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("chromium is not installed and the test is not running as root to apt-get install it; install the Debian package chromium")
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		t.Skip("chromium is not installed and apt-get is not available to install it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Log("chromium is missing; running apt-get install -y chromium (this can take minutes)")
	install := func() error {
		out, err := exec.CommandContext(ctx, apt, "install", "-y", "--no-install-recommends", "chromium").CombinedOutput()
		if err != nil {
			return errors.New(tail(string(out), 1500))
		}
		return nil
	}
	if err := install(); err != nil {
		t.Logf("apt-get install failed, updating package lists first: %v", err)
		if out, err := exec.CommandContext(ctx, apt, "update").CombinedOutput(); err != nil {
			t.Skipf("chromium could not be installed: apt-get update: %v\n%s", err, tail(string(out), 1500))
		}
		if err := install(); err != nil {
			t.Skipf("chromium could not be installed: apt-get install -y chromium: %v", err)
		}
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skipf("apt-get installed chromium but it is not on PATH: %v", err)
	}
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func TestHTMLFoldsLongNotes(t *testing.T) {
	t.Parallel()
	long := `{"n":6000,"backends":[` + strings.Repeat(`{"name":"v1","count":3000},`, 10) + `]}`
	r := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{{Name: "s", Specs: []model.Spec{{
		Name: "x", Outcome: model.OutcomePassed, Notes: []model.Note{{Name: "gatecheck.verdict", Value: long}, {Name: "pod", Value: "ns/p"}},
	}}}}}
	page := renderHTML(t, r)
	if !strings.Contains(page, `<details><summary>{&#34;n&#34;:6000,`) || !strings.Contains(page, "…</summary>") {
		t.Errorf("long note is not folded behind its first characters")
	}
	if !strings.Contains(page, "<td>ns/p</td>") {
		t.Errorf("short note is not shown inline")
	}
}
