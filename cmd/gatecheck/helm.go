package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/runner"
)

func init() { subcommands = append(subcommands, newHelmCmd) }

// helmFinder is how a run finds helm for install.kind helm: helm on PATH, else (or with
// install.helm.bundled) helm images.HelmVersion built from the module proxy into the cache.
func helmFinder(g *globalOptions) runner.HelmFinder {
	return func(ctx context.Context, bundled bool) (string, error) {
		return images.HelmCLI(ctx, cluster.CacheDir(), bundled, g.Logger)
	}
}

func newHelmCmd(g *globalOptions) *cobra.Command {
	var bundled bool
	cmd := &cobra.Command{
		Use:   "helm [--bundled] [-- HELM-ARGS...]",
		Short: "Run the helm CLI a run uses for install.kind helm (built from the Go module proxy when needed)",
		Long: `helm runs the helm CLI that 'gatecheck run' uses for profiles with install.kind helm, with
the arguments after --: the helm v3 or v4 on PATH, else (or with --bundled) helm ` + images.HelmVersion + `
built from the Go module proxy into the gatecheck cache (once, a few minutes on 2 cores). With no
arguments it prints the path of that helm. Example: gatecheck helm -- list -A --kubeconfig FILE`,
		RunE: func(c *cobra.Command, args []string) error {
			bin, err := images.HelmCLI(c.Context(), cluster.CacheDir(), bundled, g.Logger)
			if err != nil {
				return withExitCode(2, err)
			}
			if len(args) == 0 {
				fmt.Fprintln(c.OutOrStdout(), bin)
				return nil
			}
			h := exec.CommandContext(c.Context(), bin, args...)
			h.Stdin, h.Stdout, h.Stderr = os.Stdin, c.OutOrStdout(), c.ErrOrStderr()
			if err := h.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					return withExitCode(ee.ExitCode(), err)
				}
				return withExitCode(2, err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&bundled, "bundled", false, "use gatecheck's own helm "+images.HelmVersion+" even when helm is on PATH")
	return cmd
}
