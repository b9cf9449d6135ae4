// Command gatecheck brings up a cluster, installs a Gateway API implementation, runs the
// upstream conformance suite and gatecheck's traffic suites, and writes reports.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every subcommand shares.
type globalOptions struct {
	Verbose bool
	Logger  *slog.Logger
}

// subcommands is filled by init() in each command's file, so that commands live in their own
// files (cluster.go, probe.go, report.go, ...) without all editing one list.
var subcommands []func(*globalOptions) *cobra.Command

// exitError carries a specific process exit code (1: a verdict failed, 2: could not run).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExitCode wraps err so main exits with code.
func withExitCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func newRootCmd() *cobra.Command {
	opts := &globalOptions{}
	root := &cobra.Command{
		Use:   "gatecheck",
		Short: "Conformance and traffic verification for Kubernetes Gateway API implementations",
		Long: `gatecheck brings up a cluster (kind, a real single-node cluster on this host, or an
existing one), installs the Gateway API CRDs and an implementation, runs the upstream conformance
suite and gatecheck's statistical traffic suites, and writes JSON, HTML, JUnit and
ConformanceReport files. It exits non-zero when a verdict fails, so it can gate CI.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if opts.Verbose {
				level = slog.LevelDebug
			}
			opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
		},
	}
	root.PersistentFlags().BoolVarP(&opts.Verbose, "verbose", "v", false, "log debug detail")
	root.AddCommand(newVersionCmd())
	for _, sub := range subcommands {
		root.AddCommand(sub(opts))
	}
	return root
}

func main() {
	if code, ok := runHidden(os.Args); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		// Usage errors (bad flags, unknown command) and anything unclassified: could not run.
		os.Exit(2)
	}
}
