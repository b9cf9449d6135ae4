package lifecycle_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	code int
	err  error
}

func run(t *testing.T, opts lifecycle.Options, term chan struct{}) (<-chan result, string, *syncBuffer) {
	t.Helper()
	if opts.EventsFile == "" {
		opts.EventsFile = filepath.Join(t.TempDir(), "events.log")
	}
	out := &syncBuffer{}
	opts.Stdout = out
	if opts.Container == "" {
		opts.Container = "app"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	done := make(chan result, 1)
	go func() {
		code, err := lifecycle.Run(ctx, opts, term)
		done <- result{code, err}
	}()
	return done, opts.EventsFile, out
}

func events(t *testing.T, path string) []lifecycle.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := lifecycle.ReadEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func names(evs []lifecycle.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

func find(evs []lifecycle.Event, name string) lifecycle.Event {
	for _, e := range evs {
		if e.Name == name {
			return e
		}
	}
	return lifecycle.Event{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestFullLifecycleWithEndpoints(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	term := make(chan struct{}, 1)
	done, path, out := run(t, lifecycle.Options{
		Listener: ln, StartupDelay: 150 * time.Millisecond, ReadyDelay: 150 * time.Millisecond,
		TerminationDelay: 200 * time.Millisecond, ExitCode: 3, Events: []string{"custom-one"},
	}, term)

	waitFor(t, "endpoints to answer", func() bool { return status(base+"/live") == 200 })
	if got := status(base + "/startup"); got != 503 {
		t.Errorf("/startup during startup delay: got %d; want 503", got)
	}
	waitFor(t, "/startup 200", func() bool { return status(base+"/startup") == 200 })
	if got := status(base + "/ready"); got != 503 {
		t.Errorf("/ready during ready delay: got %d; want 503", got)
	}
	waitFor(t, "/ready 200", func() bool { return status(base+"/ready") == 200 })
	resp, err := http.Post(base+"/event?name=poked", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /event: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/events")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /events: %v %v", resp, err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(served), " app poked") || !strings.Contains(string(served), " app started") {
		t.Errorf("GET /events served %q; want the events file with started and poked", served)
	}

	term <- struct{}{}
	waitFor(t, "/ready 503 after sigterm", func() bool { return status(base+"/ready") == 503 })
	r := <-done
	if r.err != nil || r.code != 3 {
		t.Fatalf("Run: got %d, %v; want 3, nil", r.code, r.err)
	}
	evs := events(t, path)
	want := []string{"starting", "started", "ready", "custom-one", "poked", "sigterm", "exiting"}
	if d := cmp.Diff(want, names(evs)); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if gap := find(evs, "started").Time.Sub(find(evs, "starting").Time); gap < 150*time.Millisecond {
		t.Errorf("starting->started: got %v; want >= 150ms", gap)
	}
	if gap := find(evs, "exiting").Time.Sub(find(evs, "sigterm").Time); gap < 200*time.Millisecond {
		t.Errorf("sigterm->exiting: got %v; want >= 200ms (termination delay)", gap)
	}
	if e := find(evs, "exiting"); e.Fields["code"] != "3" || e.Fields["reason"] != "sigterm" || e.Container != "app" {
		t.Errorf("exiting event: got %+v; want container app, code=3 reason=sigterm", e)
	}
	fileBytes, _ := os.ReadFile(path)
	if out.String() != string(fileBytes) {
		t.Errorf("stdout and events file differ:\nstdout %q\nfile   %q", out.String(), fileBytes)
	}
}

func TestExits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       lifecycle.Options
		sendTerm   bool
		wantCode   int
		wantReason string
		wantEvents []string
	}{
		{name: "crash after", opts: lifecycle.Options{CrashAfter: 100 * time.Millisecond, CrashExitCode: 7}, wantCode: 7, wantReason: "crash",
			wantEvents: []string{"starting", "started", "ready", "exiting"}},
		{name: "crash during startup", opts: lifecycle.Options{StartupDelay: time.Second, CrashAfter: 50 * time.Millisecond, CrashExitCode: 9}, wantCode: 9, wantReason: "crash",
			wantEvents: []string{"starting", "exiting"}},
		{name: "exit after", opts: lifecycle.Options{ExitAfter: 100 * time.Millisecond, ExitCode: 0}, wantCode: 0, wantReason: "exit-after",
			wantEvents: []string{"starting", "started", "ready", "exiting"}},
		{name: "sigterm during startup", opts: lifecycle.Options{StartupDelay: 5 * time.Second, ExitCode: 4}, sendTerm: true, wantCode: 4, wantReason: "sigterm",
			wantEvents: []string{"starting", "sigterm", "exiting"}},
		{name: "ignored sigterm then exit after", opts: lifecycle.Options{IgnoreSIGTERM: true, ExitAfter: 300 * time.Millisecond, ExitCode: 5}, sendTerm: true, wantCode: 5, wantReason: "exit-after",
			wantEvents: []string{"starting", "started", "ready", "sigterm", "exiting"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			term := make(chan struct{}, 1)
			if tc.sendTerm {
				term <- struct{}{}
			}
			done, path, _ := run(t, tc.opts, term)
			r := <-done
			if r.err != nil || r.code != tc.wantCode {
				t.Fatalf("Run: got %d, %v; want %d, nil", r.code, r.err, tc.wantCode)
			}
			evs := events(t, path)
			if d := cmp.Diff(tc.wantEvents, names(evs)); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
			if got := find(evs, "exiting").Fields["reason"]; got != tc.wantReason {
				t.Errorf("exit reason: got %q; want %q", got, tc.wantReason)
			}
		})
	}
}

func TestOutbound(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(ok.Close)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		done, path, _ := run(t, lifecycle.Options{OutboundURL: ok.URL, ExitAfter: 50 * time.Millisecond}, make(chan struct{}))
		<-done
		e := find(events(t, path), "outbound-ok")
		if e.Fields["status"] != "200" || e.Fields["latency_ms"] == "" || e.Fields["url"] != ok.URL {
			t.Errorf("outbound-ok event: got %+v; want status=200, a latency and url=%s", e, ok.URL)
		}
	})
	t.Run("failure must succeed", func(t *testing.T) {
		t.Parallel()
		done, path, _ := run(t, lifecycle.Options{OutboundURL: deadURL, OutboundMustSucceed: true, CrashExitCode: 12, OutboundTimeout: time.Second}, make(chan struct{}))
		r := <-done
		if r.code != 12 {
			t.Errorf("exit code: got %d; want 12", r.code)
		}
		evs := events(t, path)
		if d := cmp.Diff([]string{"starting", "outbound-fail", "exiting"}, names(evs)); d != "" {
			t.Errorf("events (-want +got):\n%s", d)
		}
		if e := find(evs, "outbound-fail"); !strings.Contains(e.Fields["error"], "refused") {
			t.Errorf("outbound-fail error: got %q; want a connection-refused error", e.Fields["error"])
		}
	})
}

func TestParseEventRoundTrip(t *testing.T) {
	t.Parallel()
	e := lifecycle.Event{Time: time.UnixMilli(1764142500123).UTC(), Container: "proxy", Name: "exiting", Fields: map[string]string{"code": "0", "reason": "sigterm"}}
	line := e.String()
	if want := "1764142500123 2025-11-26T07:35:00.123Z proxy exiting code=0 reason=sigterm"; line != want {
		t.Errorf("String: got %q; want %q", line, want)
	}
	got, err := lifecycle.ParseEvent(line)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(e, got); d != "" {
		t.Errorf("ParseEvent (-want +got):\n%s", d)
	}
	for _, bad := range []string{"", "123 t app", "x t app ev", "1 t app ev novalue"} {
		if _, err := lifecycle.ParseEvent(bad); err == nil {
			t.Errorf("ParseEvent(%q): got nil error; want one", bad)
		}
	}
}
