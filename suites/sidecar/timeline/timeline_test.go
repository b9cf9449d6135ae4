package timeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/reports/model"
)

var t0 = time.Date(2026, 11, 26, 6, 0, 43, 0, time.UTC)

// recorded builds a timeline from "<ms> <container> <kind> [detail]" lines, relative to t0.
func recorded(t *testing.T, lines ...string) *Timeline {
	t.Helper()
	var evs []Event
	for _, l := range lines {
		f := strings.Fields(l)
		var msec int
		if _, err := fmt.Sscan(f[0], &msec); err != nil {
			t.Fatalf("bad recorded line %q: %v", l, err)
		}
		ev := Event{Time: t0.Add(time.Duration(msec) * time.Millisecond), Container: f[1], Kind: f[2]}
		if len(f) > 3 {
			ev.Detail = strings.Join(f[3:], " ")
		}
		evs = append(evs, ev)
	}
	return New(t0, DefaultTolerance, evs)
}

// nativePod is the host-cluster demo's recorded run: a native sidecar with a startupProbe, then
// main; on deletion main exits first and only then does the sidecar get SIGTERM.
func nativePod(t *testing.T) *Timeline {
	return recorded(t,
		"0 init-once starting",
		"40 init-once exiting code=0",
		"300 sidecar starting",
		"489 sidecar started addr=:9090",
		"2497 main starting",
		"2510 main started addr=:8080",
		"5409 main sigterm",
		"6410 main exiting code=0",
		"6481 sidecar sigterm",
		"8482 sidecar exiting code=0",
	)
}

// legacyPod is the same workload with the "sidecar" declared as a regular container: the
// kubelet starts both at once and signals both at once.
func legacyPod(t *testing.T) *Timeline {
	return recorded(t,
		"300 sidecar starting",
		"310 main starting",
		"330 main started addr=:8080",
		"1490 sidecar started addr=:9090",
		"5409 main sigterm",
		"5410 sidecar sigterm",
		"5500 sidecar exiting code=0",
		"6410 main exiting code=0",
	)
}

func TestPredicates(t *testing.T) {
	t.Parallel()
	type check func(*Timeline) error
	tests := []struct {
		name    string
		tl      func(*testing.T) *Timeline
		check   check
		wantErr string // empty: the predicate must hold
	}{
		{"native: init exits before sidecar starts", nativePod, func(tl *Timeline) error { return tl.ExitsBeforeStart("init-once", "sidecar") }, ""},
		{"native: sidecar does not exit before main starts", nativePod, func(tl *Timeline) error { return tl.ExitsBeforeStart("sidecar", "main") },
			"main was starting at +2.497s, 5985 ms before sidecar exited at +8.482s; want main to start only after sidecar has exited"},
		{"native: sidecar starts before main", nativePod, func(tl *Timeline) error { return tl.StartsBefore("sidecar", "main") }, ""},
		{"native: init before sidecar", nativePod, func(tl *Timeline) error { return tl.ExitsBefore("init-once", "sidecar") }, ""},
		{"native: main exits before sidecar", nativePod, func(tl *Timeline) error { return tl.ExitsBefore("main", "sidecar") }, ""},
		{"native: sidecar signalled after main exit", nativePod, func(tl *Timeline) error { return tl.SigtermAfterExit("main", "sidecar") }, ""},
		{"native: run together", nativePod, func(tl *Timeline) error { return tl.RunTogether("sidecar", "main") }, ""},
		{"native: not restarted", nativePod, func(tl *Timeline) error { return tl.NotRestarted("sidecar") }, ""},
		{"native: exits by deadline", nativePod, func(tl *Timeline) error { return tl.ExitsBy("sidecar", t0.Add(8200*time.Millisecond)) }, ""},
		{"native: late exit", nativePod, func(tl *Timeline) error { return tl.ExitsBy("sidecar", t0.Add(7*time.Second)) },
			"sidecar exited at +8.482s, 1482 ms after the deadline +7.000s (tolerance 500 ms); want it exited by then"},
		{"native: init never restarted but not running together", nativePod, func(tl *Timeline) error { return tl.RunTogether("init-once", "main") },
			"init-once and main overlapped for at most 0 ms; want more than the 500 ms tolerance"},
		{"native: no restart", nativePod, func(tl *Timeline) error { return tl.HasRestarted("sidecar") },
			"sidecar started 1 time(s); want it restarted at least once"},
		{"native: missing container", nativePod, func(tl *Timeline) error { return tl.StartsBefore("sidecar", "ghost") },
			`ghost never reported "starting"; want it to start after sidecar`},
		{"native: ghost doesn't start", nativePod, func(tl *Timeline) error { return tl.DoesntStart("ghost") }, ""},
		{"native: main does start", nativePod, func(tl *Timeline) error { return tl.DoesntStart("main") }, "main started at +2.497s; want it not started"},

		// The deliberately wrong expectation: treating a regular container as a sidecar.
		{"legacy: sidecar does not start first", legacyPod, func(tl *Timeline) error { return tl.StartsBefore("sidecar", "main") },
			"main was starting at +0.310s, 1180 ms before sidecar was started at +1.490s; want main to start only after sidecar has started"},
		{"legacy: sidecar exits before main", legacyPod, func(tl *Timeline) error { return tl.ExitsBefore("main", "sidecar") },
			"main exited at +6.410s, 910 ms after sidecar exited at +5.500s; want main to exit first"},
		{"legacy: sidecar signalled with main", legacyPod, func(tl *Timeline) error { return tl.SigtermAfterExit("main", "sidecar") },
			"sidecar got SIGTERM at +5.410s, 1000 ms before main exited at +6.410s; want SIGTERM only after main has exited"},
		{"legacy: still runs together", legacyPod, func(tl *Timeline) error { return tl.RunTogether("sidecar", "main") }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.check(tc.tl(t))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got error %v; want the predicate to hold", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("got no error; want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.HasPrefix(err.Error(), tc.wantErr+"; timeline"):
				t.Fatalf("got error %q; want it to start with %q", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "sidecar") {
				t.Errorf("error does not print the timeline: %v", err)
			}
		})
	}
}

func TestRestarts(t *testing.T) {
	t.Parallel()
	tl := recorded(t,
		"0 sidecar starting",
		"20 sidecar started",
		"50 main starting",
		"60 main started",
		"1020 sidecar exiting code=1 crash-after=1s",
		"1100 sidecar starting",
		"1120 sidecar started",
		"2120 sidecar exiting code=1 crash-after=1s",
		"3200 sidecar starting",
		"3220 sidecar started",
	)
	if err := tl.HasRestarted("sidecar"); err != nil {
		t.Error(err)
	}
	if got, want := tl.Restarts("sidecar"), 2; got != want {
		t.Errorf("got %d restarts; want %d", got, want)
	}
	if err := tl.NotRestarted("main"); err != nil {
		t.Error(err)
	}
	if err := tl.NotRestarted("sidecar"); err == nil || !strings.HasPrefix(err.Error(), "sidecar started 3 times; want it started exactly once") {
		t.Errorf("got %v; want a 'started 3 times' error", err)
	}
	// main (never exited) ran together with the sidecar's second run.
	if err := tl.RunTogether("main", "sidecar"); err != nil {
		t.Error(err)
	}
}

func TestParseAndMerge(t *testing.T) {
	t.Parallel()
	file := strings.Join([]string{
		"1795672843300 2026-11-26T06:00:43.300Z sidecar starting pid=1",
		"1795672843489 2026-11-26T06:00:43.489Z sidecar started",
		"1795672845497 2026-11-26T06:00:45.497Z main starting pid=1",
		"",
	}, "\n")
	// The same lines again from a container's log, mixed with the process's other output.
	logs := "time=2026-11-26T06:00:45.490Z level=INFO msg=listening addr=:8080\n" +
		"1795672845497 2026-11-26T06:00:45.497Z main starting pid=1\n" +
		"1795672845510 2026-11-26T06:00:45.510Z main started\n"
	a, err := Parse("file", strings.NewReader(file), ParseLine)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("logs", strings.NewReader(logs), ParseLine)
	if err != nil {
		t.Fatal(err)
	}
	got := Merge(b, a)
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.Container+" "+e.Kind)
	}
	want := []string{"sidecar starting", "sidecar started", "main starting", "main started"}
	if d := cmp.Diff(want, kinds); d != "" {
		t.Errorf("merged events (-want +got):\n%s", d)
	}
	if got[0].Detail != "pid=1" {
		t.Errorf("got detail %q; want %q", got[0].Detail, "pid=1")
	}
	if _, err := Parse("bad", strings.NewReader("1795672843300 2026-11-26T06:00:43.300Z lonely\n"), ParseLine); err == nil || !strings.Contains(err.Error(), "bad line 1") {
		t.Errorf("got %v; want an error naming the source and line", err)
	}
	for _, e := range append(a, b...) {
		back, ok, err := ParseLine(FormatLine(e))
		if err != nil || !ok || back != e {
			t.Errorf("FormatLine/ParseLine round trip of %+v: got %+v ok=%v err=%v", e, back, ok, err)
		}
	}
}

func TestModel(t *testing.T) {
	t.Parallel()
	tl := recorded(t,
		"0 app starting",
		"5 app outbound-ok status=200 latency=3ms",
		"300 proxy starting",
		"320 proxy started",
		"900 proxy exiting code=1",
		"950 proxy starting",
	)
	got := tl.Model("native", []string{"proxy", "app"}, map[string]string{"proxy": "sidecar", "app": "main"})
	want := model.SidecarTimeline{Variant: "native", Containers: []model.ContainerTimeline{
		{Name: "proxy", Role: "sidecar", Events: []model.ContainerEvent{
			{Kind: model.EventStart, TimeMs: 300}, {Kind: model.EventReady, TimeMs: 320, Detail: "started"},
			{Kind: model.EventExit, TimeMs: 900, Detail: "code=1"}, {Kind: model.EventRestart, TimeMs: 950, Detail: "run 2"},
		}},
		{Name: "app", Role: "main", Events: []model.ContainerEvent{
			{Kind: model.EventStart, TimeMs: 0, Detail: "outbound-ok status=200 latency=3ms"},
		}},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Model (-want +got):\n%s", d)
	}
	m := model.New("t", &model.SidecarTimelines{Variants: []model.SidecarTimeline{got}})
	if err := m.Validate(); err != nil {
		t.Errorf("report measurement does not validate: %v", err)
	}
}
