package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/runner"
)

func init() { subcommands = append(subcommands, newRegistryCmd) }

// registryPusher is the runner's ImagePusher over cluster.Registry.
type registryPusher struct{ cluster.Registry }

func (p registryPusher) Push(ctx context.Context, archives []string, out io.Writer) (imagemap.Map, error) {
	return cluster.Push(ctx, p.Registry, archives, out)
}

func (p registryPusher) Prepull(ctx context.Context, cfg *rest.Config, images []string, out io.Writer) error {
	return cluster.Prepull(ctx, cfg, images, 5*time.Minute, out)
}

var _ runner.ImagePusher = registryPusher{}

type registryFlags struct {
	addr, dir, addrFile, hostStateDir string
	trustHost                         string
}

func newRegistryCmd(g *globalOptions) *cobra.Command {
	f := &registryFlags{}
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "A local image registry for --registry (on loopback, for testing the registry path)",
	}
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve an image registry on loopback until interrupted, trusted by the host cluster's containerd",
		Long: `serve runs an OCI distribution registry (go-containerregistry's pkg/registry) on a loopback
address until Ctrl-C: gatecheck run --registry ADDR pushes its images there and the cluster's nodes
pull them. When the host cluster is up (--trust-host-cluster auto), its containerd is told to
pull from this registry over plain HTTP (a hosts.toml under its config_path), and the file is
removed again on exit. Blobs are kept in --dir; manifests live in memory, so push again after a
restart.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return serveRegistry(c.Context(), c.OutOrStdout(), g, f) },
	}
	fl := serve.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:5000", "loopback address to listen on (port 0 picks a free one)")
	fl.StringVar(&f.dir, "dir", "", "blob directory (default <cache>/registry)")
	fl.StringVar(&f.addrFile, "addr-file", "", "write the address served to this file once listening (for scripts using port 0)")
	fl.StringVar(&f.trustHost, "trust-host-cluster", "auto", "auto (when the host cluster is up), true or false: let the host cluster's containerd pull from this registry over plain HTTP")
	fl.StringVar(&f.hostStateDir, "host-state-dir", "/var/lib/gatecheck/host", "the host cluster's state directory")
	cmd.AddCommand(serve)
	return cmd
}

func serveRegistry(ctx context.Context, out io.Writer, g *globalOptions, f *registryFlags) error {
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return withExitCode(2, fmt.Errorf("--addr %q: want HOST:PORT: %w", f.addr, err))
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return withExitCode(2, fmt.Errorf("--addr %s: the registry serves plain HTTP, so on loopback only (127.0.0.1, localhost, ::1)", f.addr))
	}
	switch f.trustHost {
	case "auto", "true", "false":
	default:
		return withExitCode(2, fmt.Errorf("--trust-host-cluster %q: want auto, true or false", f.trustHost))
	}
	dir := f.dir
	if dir == "" {
		dir = filepath.Join(cluster.CacheDir(), "registry")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return withExitCode(2, fmt.Errorf("--dir: %w", err))
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return withExitCode(2, fmt.Errorf("--addr: %w", err))
	}
	addr := ln.Addr().String()
	reqLog := log.New(io.Discard, "", 0)
	if g.Verbose {
		reqLog = log.New(os.Stderr, "registry: ", log.LstdFlags)
	}
	srv := &http.Server{Handler: registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(dir)), registry.Logger(reqLog)), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(out, "registry serving on %s (plain HTTP; blobs in %s)\n", addr, dir)
	if f.trustHost == "true" || (f.trustHost == "auto" && fileExists(filepath.Join(f.hostStateDir, "conf", "containerd.toml"))) {
		path, remove, err := cluster.TrustRegistryOnHost(f.hostStateDir, addr)
		if err != nil {
			return withExitCode(2, fmt.Errorf("--trust-host-cluster: %w", err))
		}
		defer func() {
			if err := remove(); err != nil {
				g.Logger.Warn("could not remove the registry's hosts.toml", "path", path, "error", err)
			}
		}()
		fmt.Fprintf(out, "host cluster's containerd pulls from it over plain HTTP: %s\n", path)
	}
	if f.addrFile != "" {
		if err := os.WriteFile(f.addrFile, []byte(addr+"\n"), 0o644); err != nil {
			return withExitCode(2, fmt.Errorf("--addr-file: %w", err))
		}
	}
	fmt.Fprintf(out, "use: gatecheck run --cluster existing --registry %s ...; Ctrl-C stops it\n", addr)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "registry stopped")
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return withExitCode(2, fmt.Errorf("registry on %s: %w", addr, err))
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
