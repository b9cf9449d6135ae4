package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Options configure Run. Durations of zero mean "no delay" or "never".
type Options struct {
	// Container names this process in every event (e.g. the container name).
	Container string
	// EventsFile is appended to (created if missing); empty writes events to Stdout only.
	EventsFile string
	// Stdout also receives every event; nil skips it.
	Stdout io.Writer
	// Listener, when set, serves /startup (200 once started), /ready (200 once ready and not
	// terminating), /live (200), GET /events (the events file) and POST /event?name=N (appends
	// custom event N).
	Listener net.Listener

	// StartupDelay is the time between "starting" and "started".
	StartupDelay time.Duration
	// ReadyDelay is the time between "started" and "ready".
	ReadyDelay time.Duration
	// TerminationDelay is how long the process takes to exit after SIGTERM.
	TerminationDelay time.Duration
	// IgnoreSIGTERM logs "sigterm" but keeps running until killed (or ExitAfter/CrashAfter).
	IgnoreSIGTERM bool
	// ExitCode is the exit code after SIGTERM or ExitAfter.
	ExitCode int
	// ExitAfter makes the process exit by itself this long after start (Job-like containers).
	ExitAfter time.Duration
	// CrashAfter makes the process exit abruptly with CrashExitCode this long after start.
	CrashAfter    time.Duration
	CrashExitCode int
	// Events are custom event names emitted, in order, right after "ready".
	Events []string

	// OutboundURL, when set, is requested right after "starting" (before the startup delay),
	// to check that e.g. a proxy sidecar already serves; the outcome and latency become an
	// "outbound-ok" or "outbound-fail" event.
	OutboundURL     string
	OutboundTimeout time.Duration
	// OutboundMustSucceed exits with CrashExitCode (reason=outbound-failed) when it fails.
	OutboundMustSucceed bool

	Logger *slog.Logger
}

// Exit reasons in the "exiting" event's reason field.
const (
	ReasonSIGTERM        = "sigterm"
	ReasonCrash          = "crash"
	ReasonExitAfter      = "exit-after"
	ReasonOutboundFailed = "outbound-failed"
	ReasonCanceled       = "canceled"
)

// Run plays the lifecycle and returns the process exit code. Every value received on term
// counts as a SIGTERM. Cancelling ctx ends Run at once (reason=canceled).
func Run(ctx context.Context, opts Options, term <-chan struct{}) (int, error) {
	rec, err := newRecorder(opts.Container, opts.EventsFile, opts.Stdout)
	if err != nil {
		return 2, err
	}
	defer rec.close()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	began := time.Now()
	rec.emit(EventStarting, "pid", strconv.Itoa(os.Getpid()))

	var started, ready, terminating atomic.Bool
	var srv *http.Server
	if opts.Listener != nil {
		srv = &http.Server{Handler: endpoints(rec, opts.EventsFile, &started, &ready, &terminating), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(opts.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("lifecycle endpoints stopped", "addr", opts.Listener.Addr().String(), "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	crashCode := opts.CrashExitCode
	exitNow := func(code int, reason string) (int, error) {
		rec.emit(EventExiting, "code", strconv.Itoa(code), "reason", reason)
		return code, nil
	}

	if opts.OutboundURL != "" {
		if ok := outbound(ctx, rec, opts.OutboundURL, opts.OutboundTimeout); !ok && opts.OutboundMustSucceed {
			return exitNow(crashCode, ReasonOutboundFailed)
		}
	}

	timer := func(d time.Duration) <-chan time.Time {
		if d <= 0 {
			return nil
		}
		return time.After(time.Until(began.Add(d)))
	}
	crash, exitAfter := timer(opts.CrashAfter), timer(opts.ExitAfter)

	// onTerm handles a SIGTERM at any phase; it returns true when Run should return.
	onTerm := func() bool {
		rec.emit(EventSIGTERM)
		terminating.Store(true)
		return !opts.IgnoreSIGTERM
	}
	terminate := func() (int, error) {
		if opts.TerminationDelay > 0 {
			t := time.NewTimer(opts.TerminationDelay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-crash:
				return exitNow(crashCode, ReasonCrash)
			case <-ctx.Done():
				return exitNow(crashCode, ReasonCanceled)
			}
		}
		return exitNow(opts.ExitCode, ReasonSIGTERM)
	}
	// wait sleeps d unless something ends the process first; done reports that it did.
	wait := func(d time.Duration) (code int, done bool, err error) {
		var step <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			step = t.C
		} else if d == 0 {
			return 0, false, nil
		}
		for {
			select {
			case <-step:
				return 0, false, nil
			case <-term:
				if onTerm() {
					c, err := terminate()
					return c, true, err
				}
			case <-crash:
				c, err := exitNow(crashCode, ReasonCrash)
				return c, true, err
			case <-exitAfter:
				c, err := exitNow(opts.ExitCode, ReasonExitAfter)
				return c, true, err
			case <-ctx.Done():
				c, err := exitNow(crashCode, ReasonCanceled)
				return c, true, err
			}
		}
	}

	if code, done, err := wait(opts.StartupDelay); done {
		return code, err
	}
	started.Store(true)
	rec.emit(EventStarted)
	if code, done, err := wait(opts.ReadyDelay); done {
		return code, err
	}
	ready.Store(true)
	rec.emit(EventReady)
	for _, name := range opts.Events {
		rec.emit(name)
	}
	code, _, err := wait(-1) // forever, until a signal, a timer or ctx
	return code, err
}

// outbound makes one GET and records its outcome and latency.
func outbound(ctx context.Context, rec *recorder, url string, timeout time.Duration) bool {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		rec.emit(EventOutboundErr, "url", url, "error", err.Error(), "latency_ms", "0")
		return false
	}
	// A fresh transport: no connection reuse, so the latency includes the dial through the proxy.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	latency := strconv.FormatFloat(float64(time.Since(began).Microseconds())/1000, 'f', 3, 64)
	if err != nil {
		rec.emit(EventOutboundErr, "url", url, "error", err.Error(), "latency_ms", latency)
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		rec.emit(EventOutboundErr, "url", url, "status", strconv.Itoa(resp.StatusCode), "latency_ms", latency)
		return false
	}
	rec.emit(EventOutboundOK, "url", url, "status", strconv.Itoa(resp.StatusCode), "latency_ms", latency)
	return true
}

func endpoints(rec *recorder, eventsFile string, started, ready, terminating *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	// GET /events serves the shared events file as it is, so a suite can read every
	// container's events, across restarts, through the API server's pod proxy (the image has no
	// shell to cat it with).
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		if eventsFile == "" {
			http.Error(w, "no events file configured (--events-file)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		http.ServeFile(w, r, eventsFile)
	})
	gate := func(ok func() bool, what string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if !ok() {
				http.Error(w, "not "+what, http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(what))
		}
	}
	mux.HandleFunc("GET /startup", gate(started.Load, "started"))
	mux.HandleFunc("GET /ready", gate(func() bool { return ready.Load() && !terminating.Load() }, "ready"))
	mux.HandleFunc("GET /live", gate(func() bool { return true }, "live"))
	mux.HandleFunc("POST /event", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" || sanitize(name) != name {
			http.Error(w, fmt.Sprintf("query parameter name=%q: want one word", name), http.StatusBadRequest)
			return
		}
		e := rec.emit(name)
		_, _ = w.Write([]byte(e.String() + "\n"))
	})
	return mux
}
