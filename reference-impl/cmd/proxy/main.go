// Command proxy is the gatecheck reference data plane: it serves one Gateway's listeners from
// a snapshot file (--config) or from the reference controller's stream (--controller).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
	// Mozilla's roots, used only where the system has none: the proxy image is a bare binary,
	// and BackendTLSPolicy's wellKnownCACertificates System verifies against the system roots.
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		configFile = flag.String("config", "", "snapshot JSON file to serve; reloaded on SIGHUP and when it changes")
		controller = flag.String("controller", "", "controller delivery URL, e.g. https://10.96.0.10:18000")
		tlsDir     = flag.String("tls-dir", "", "with --controller: directory with ca.crt, tls.crt and tls.key, this Gateway's delivery certificate (required)")
		serverName = flag.String("controller-server-name", "", "with --controller: the DNS name in the controller's certificate (required)")
		gateway    = flag.String("gateway", "", "namespace/name of the Gateway to serve (with --controller)")
		podName    = flag.String("pod-name", os.Getenv("POD_NAME"), "this proxy's Pod name, sent with acks (default $POD_NAME, else the hostname)")
		adminAddr  = flag.String("admin-addr", ":19000", "address of /ready and /metrics")
		bindAddr   = flag.String("bind-address", "0.0.0.0", "address listeners bind to")
		logLevel   = flag.String("log-level", "info", "debug, info, warn or error")
	)
	flag.Parse()
	// A proxy's live heap is small and its garbage is per-request; collecting less often
	// buys throughput for a few MB of memory. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if (*configFile == "") == (*controller == "") {
		return errors.New("give exactly one of --config FILE or --controller URL")
	}
	var gw ir.NamespacedName
	if *controller != "" {
		ns, name, ok := strings.Cut(*gateway, "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("--gateway %q: want namespace/name", *gateway)
		}
		gw = ir.NamespacedName{Namespace: ns, Name: name}
		if *tlsDir == "" || *serverName == "" {
			return errors.New("--controller needs --tls-dir and --controller-server-name (the delivery channel is mutual TLS)")
		}
		if *podName == "" {
			*podName, _ = os.Hostname()
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := proxy.New(proxy.Options{Logger: log, BindAddress: *bindAddr})
	admin := &http.Server{Addr: *adminAddr, Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	adminErr := make(chan error, 1)
	go func() { adminErr <- admin.ListenAndServe() }()
	log.Info("admin listening", "address", *adminAddr)

	var err error
	if *configFile != "" {
		err = serveFile(ctx, log, p, *configFile)
	} else {
		var hc *http.Client
		if hc, err = delivery.MutualTLS(*tlsDir, *serverName); err == nil {
			c := &delivery.Client{BaseURL: *controller, Gateway: gw, Proxy: *podName, Logger: log, HTTP: hc}
			err = c.Run(ctx, p)
		}
	}
	select {
	case aerr := <-adminErr:
		return fmt.Errorf("admin server on %s: %w", *adminAddr, aerr)
	default:
	}
	log.Info("shutting down", "reason", err)
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin.Shutdown(sctx)
	if cerr := p.Close(sctx); cerr != nil {
		return cerr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// serveFile applies the snapshot in path, then again on SIGHUP or when its modification time
// or size changes (polled every second, which also works for ConfigMap symlink swaps).
func serveFile(ctx context.Context, log *slog.Logger, p *proxy.Proxy, path string) error {
	load := func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config %s: %w", path, err)
		}
		var s ir.Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode config %s: %w", path, err)
		}
		if err := p.Apply(&s); err != nil {
			return fmt.Errorf("apply config %s: %w", path, err)
		}
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	stamp := func() string {
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	}
	last := stamp()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hup:
		case <-tick.C:
			if s := stamp(); s == last || s == "" {
				continue
			}
		}
		last = stamp()
		if err := load(); err != nil {
			log.Error("reload failed; still serving the previous snapshot", "error", err)
		}
	}
}
