// Command echo-backend is gatecheck's test backend: one static binary with an HTTP/h2c JSON
// echo, a gRPC echo, a TCP echo and a lifecycle mode for sidecar tests, plus a records admin
// API. See README.md for flags, environment and endpoints.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/forwardproxy"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/udpecho"
)

func main() {
	term := make(chan struct{}, 4)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for range sigs {
			term <- struct{}{}
		}
	}()
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr, term))
}

// Modes.
const (
	modeHTTP      = "http"
	modeGRPC      = "grpc"
	modeTCP       = "tcp"
	modeUDP       = "udp"
	modeLifecycle = "lifecycle"
	// modeForwardProxy stands in for a mesh sidecar proxy (package forwardproxy).
	modeForwardProxy = "forward-proxy"
)

type config struct {
	mode            string
	addr            string
	adminAddr       string
	recordsSize     int
	tlsCert         string
	tlsKey          string
	tlsClientCA     string
	shutdownTimeout time.Duration
	drainDelay      time.Duration
	quiet           bool
	responseDelay   time.Duration
	responseStatus  int
	upstream        string
	id              identity.Identity
	life            lifecycle.Options
	events          stringList
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parse reads flags; errors are usage errors (exit code 2).
func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("echo-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envOr := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	id := identity.FromEnv(getenv)
	fs.StringVar(&c.mode, "mode", envOr("MODE", modeHTTP), "http | grpc | tcp | udp | lifecycle | forward-proxy (env MODE)")
	fs.StringVar(&c.addr, "addr", ":3000", "listen address of the mode's server (lifecycle: its /startup /ready endpoints; empty disables them there)")
	fs.StringVar(&c.adminAddr, "admin-addr", ":9090", "listen address of the records admin API (/records, /stats); empty disables it")
	fs.IntVar(&c.recordsSize, "records", records.DefaultCapacity, "how many request records the admin API keeps; older ones are overwritten and counted as evicted")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate file: serve TLS instead of plaintext (http, grpc)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "PEM CA file: verify client certificates when given (optional for clients)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long to wait for in-flight requests before closing them")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "on SIGTERM, keep serving this long before draining (lets endpoints deregister)")
	fs.BoolVar(&c.quiet, "quiet", false, "do not print the per-request log line")
	fs.DurationVar(&c.responseDelay, "response-delay", 0, "http: delay every answer this long (a slow backend, e.g. a mirror that must not slow the primary)")
	fs.IntVar(&c.responseStatus, "response-status", 0, "http: answer every request with this status unless it asks for /status/NNN (0: 200)")
	fs.StringVar(&c.upstream, "upstream", "", "forward-proxy: the URL every request is proxied to, e.g. http://10.0.0.7:8080")
	fs.StringVar(&c.id.Backend, "backend", id.Backend, "backend identity label (env BACKEND)")
	fs.StringVar(&c.id.Pod, "pod", id.Pod, "pod name (env POD_NAME)")
	fs.StringVar(&c.id.Namespace, "namespace", id.Namespace, "namespace (env NAMESPACE)")
	fs.StringVar(&c.id.Service, "service", id.Service, "service name (env SERVICE_NAME)")
	c.id.Ingress = id.Ingress

	l := &c.life
	fs.StringVar(&l.Container, "name", envOr("LIFECYCLE_NAME", "echo-backend"), "lifecycle, forward-proxy: container name written in every event (env LIFECYCLE_NAME)")
	fs.StringVar(&l.EventsFile, "events-file", getenv("EVENTS_FILE"), "lifecycle: file to append events to (env EVENTS_FILE); events always go to stdout too")
	fs.DurationVar(&l.StartupDelay, "startup-delay", 0, "lifecycle: time from 'starting' to 'started'")
	fs.DurationVar(&l.ReadyDelay, "ready-delay", 0, "lifecycle: time from 'started' to 'ready'")
	fs.DurationVar(&l.TerminationDelay, "termination-delay", 0, "lifecycle: time from SIGTERM to exit")
	fs.BoolVar(&l.IgnoreSIGTERM, "ignore-sigterm", false, "lifecycle: log SIGTERM but keep running")
	fs.IntVar(&l.ExitCode, "exit-code", 0, "lifecycle: exit code after SIGTERM or --exit-after")
	fs.DurationVar(&l.ExitAfter, "exit-after", 0, "lifecycle: exit by itself this long after start (0: never)")
	fs.DurationVar(&l.CrashAfter, "crash-after", 0, "lifecycle: exit abruptly with --crash-exit-code this long after start (0: never)")
	fs.IntVar(&l.CrashExitCode, "crash-exit-code", 1, "lifecycle: exit code of --crash-after and of a failed --outbound-must-succeed")
	fs.Var(&c.events, "event", "lifecycle: custom event emitted after 'ready' (repeatable)")
	fs.StringVar(&l.OutboundURL, "outbound-url", "", "lifecycle: GET this URL right after 'starting' and record outcome and latency")
	fs.DurationVar(&l.OutboundTimeout, "outbound-timeout", 5*time.Second, "lifecycle: timeout of --outbound-url")
	fs.BoolVar(&l.OutboundMustSucceed, "outbound-must-succeed", false, "lifecycle: exit with --crash-exit-code when --outbound-url fails")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: echo-backend takes flags only", fs.Args())
	}
	l.Events = c.events
	var errs []error
	switch c.mode {
	case modeHTTP, modeGRPC, modeTCP, modeUDP, modeLifecycle, modeForwardProxy:
	default:
		errs = append(errs, fmt.Errorf("flag --mode=%q: want http, grpc, tcp, udp, lifecycle or forward-proxy", c.mode))
	}
	if (c.mode == modeForwardProxy) != (c.upstream != "") {
		errs = append(errs, fmt.Errorf("flag --upstream=%q: mode forward-proxy needs it and only it uses it (mode %s)", c.upstream, c.mode))
	} else if u, err := url.Parse(c.upstream); c.upstream != "" && (err != nil || u.Scheme == "" || u.Host == "") {
		errs = append(errs, fmt.Errorf("flag --upstream=%q: want an absolute URL like http://10.0.0.7:8080", c.upstream))
	}
	if c.mode != modeLifecycle && c.addr == "" {
		errs = append(errs, fmt.Errorf("flag --addr: empty; mode %s needs a listen address", c.mode))
	}
	if c.recordsSize <= 0 {
		errs = append(errs, fmt.Errorf("flag --records=%d: want a positive count", c.recordsSize))
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, errors.New("flags --tls-cert and --tls-key: set both or neither"))
	}
	if c.tlsCert != "" && c.mode != modeHTTP && c.mode != modeGRPC {
		errs = append(errs, fmt.Errorf("flag --tls-cert: mode %s does not serve TLS (http and grpc do)", c.mode))
	}
	if c.tlsClientCA != "" && c.tlsCert == "" {
		errs = append(errs, errors.New("flag --tls-client-ca: needs --tls-cert and --tls-key"))
	}
	for name, d := range map[string]time.Duration{
		"shutdown-timeout": c.shutdownTimeout, "drain-delay": c.drainDelay, "startup-delay": l.StartupDelay,
		"ready-delay": l.ReadyDelay, "termination-delay": l.TerminationDelay, "exit-after": l.ExitAfter,
		"crash-after": l.CrashAfter, "outbound-timeout": l.OutboundTimeout, "response-delay": c.responseDelay,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("flag --%s=%v: want a non-negative duration", name, d))
		}
	}
	for name, code := range map[string]int{"exit-code": l.ExitCode, "crash-exit-code": l.CrashExitCode} {
		if code < 0 || code > 255 {
			errs = append(errs, fmt.Errorf("flag --%s=%d: want 0-255", name, code))
		}
	}
	if c.responseStatus != 0 && (c.responseStatus < 200 || c.responseStatus > 599) {
		errs = append(errs, fmt.Errorf("flag --response-status=%d: want 200-599 (or 0 for 200)", c.responseStatus))
	}
	if (c.responseDelay != 0 || c.responseStatus != 0) && c.mode != modeHTTP {
		errs = append(errs, fmt.Errorf("flags --response-delay and --response-status: only mode http uses them, not %s", c.mode))
	}
	for _, e := range c.events {
		if e == "" || strings.ContainsAny(e, " \t\r\n") {
			errs = append(errs, fmt.Errorf("flag --event=%q: want one word", e))
		}
	}
	return c, errors.Join(errs...)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, term <-chan struct{}) int {
	c, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "echo-backend: %v\nRun 'echo-backend -h' for the flags.\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("mode", c.mode)
	if c.mode == modeLifecycle {
		return runLifecycle(ctx, c, stdout, logger, term)
	}
	code, err := serve(ctx, c, stdout, logger, term)
	if err != nil {
		logger.Error("echo-backend failed", "err", err)
	}
	return code
}

func runLifecycle(ctx context.Context, c *config, stdout io.Writer, logger *slog.Logger, term <-chan struct{}) int {
	c.life.Stdout = stdout
	c.life.Logger = logger
	if c.addr != "" {
		ln, err := net.Listen("tcp", c.addr)
		if err != nil {
			logger.Error("listen for lifecycle endpoints", "addr", c.addr, "err", err)
			return 2
		}
		logger.Info("listening", "addr", ln.Addr().String())
		c.life.Listener = ln
	}
	code, err := lifecycle.Run(ctx, c.life, term)
	if err != nil {
		logger.Error("lifecycle", "err", err)
	}
	return code
}

// listen opens the mode's socket: UDP for mode udp (a udpecho.Listener), else TCP.
func listen(c *config) (net.Listener, error) {
	if c.mode == modeUDP {
		pc, err := net.ListenPacket("udp", c.addr)
		if err != nil {
			return nil, fmt.Errorf("listen on --addr=%s (udp): %w", c.addr, err)
		}
		return udpecho.NewListener(pc), nil
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --addr=%s: %w", c.addr, err)
	}
	return ln, nil
}

// server is what every serving mode offers.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

func serve(ctx context.Context, c *config, stdout io.Writer, logger *slog.Logger, term <-chan struct{}) (int, error) {
	var reqLog io.Writer = stdout
	if c.quiet {
		reqLog = nil
	}
	store := records.NewStore(c.id, c.recordsSize)
	tlsConf, err := loadTLS(c)
	if err != nil {
		return 2, err
	}
	var srv server
	switch c.mode {
	case modeHTTP:
		s, err := echo.NewServer(echo.Options{Identity: c.id, Records: store, RequestLog: reqLog, TLS: tlsConf, Logger: logger,
			ResponseDelay: c.responseDelay, ResponseStatus: c.responseStatus})
		if err != nil {
			return 2, err
		}
		srv = s
	case modeGRPC:
		srv = grpcecho.NewServer(grpcecho.Options{Identity: c.id, Records: store, RequestLog: reqLog, TLS: tlsConf, Logger: logger})
	case modeTCP:
		srv = tcpecho.NewServer(tcpecho.Options{Identity: c.id, Records: store, RequestLog: reqLog, Logger: logger})
	case modeUDP:
		srv = udpecho.NewServer(udpecho.Options{Identity: c.id, RequestLog: reqLog, Logger: logger})
	case modeForwardProxy:
		// Checked by parse. The proxy records nothing: the admin API (if on) stays empty.
		up, _ := url.Parse(c.upstream)
		s, err := forwardproxy.New(forwardproxy.Options{Upstream: up, Container: c.life.Container, Events: stdout, Logger: logger})
		if err != nil {
			return 2, err
		}
		srv = s
	}
	ln, err := listen(c)
	if err != nil {
		return 2, err
	}
	var admin *http.Server
	if c.adminAddr != "" {
		aln, err := net.Listen("tcp", c.adminAddr)
		if err != nil {
			ln.Close()
			return 2, fmt.Errorf("listen on --admin-addr=%s: %w", c.adminAddr, err)
		}
		admin = &http.Server{Handler: store.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("admin API stopped", "err", err)
			}
		}()
		logger.Info("admin API listening", "addr", aln.Addr().String(), "records", c.recordsSize)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "tls", tlsConf != nil, "backend", c.id.Backend, "pod", c.id.Pod)

	select {
	case err := <-served:
		return 1, fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	case <-term:
		logger.Info("SIGTERM received", "drain_delay", c.drainDelay, "shutdown_timeout", c.shutdownTimeout)
	}
	if c.drainDelay > 0 {
		select {
		case <-time.After(c.drainDelay):
		case <-term: // a second signal skips the delay
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	began := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				logger.Info("still draining in-flight requests", "waited", time.Since(began).Round(time.Second), "limit", c.shutdownTimeout)
			}
		}
	}()
	err = srv.Shutdown(sctx)
	close(stop)
	if serr := <-served; serr != nil {
		err = errors.Join(err, serr)
	}
	if admin != nil {
		_ = admin.Shutdown(sctx)
	}
	st := store.Stats()
	logger.Info("exiting", "drained_in", time.Since(began).Round(time.Millisecond), "requests", st.Total, "err", err)
	if err != nil {
		return 1, err
	}
	return 0, nil
}

func loadTLS(c *config) (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert=%s --tls-key=%s: %w", c.tlsCert, c.tlsKey, err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsClientCA != "" {
		pem, err := os.ReadFile(c.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("read --tls-client-ca=%s: %w", c.tlsClientCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("flag --tls-client-ca=%s: no PEM certificates found", c.tlsClientCA)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return conf, nil
}
