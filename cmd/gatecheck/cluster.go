package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/cluster"
)

func init() { subcommands = append(subcommands, newClusterCmd) }

type clusterFlags struct {
	provider   string
	kubeconfig string
	context    string
	keep       bool
}

func newClusterCmd(g *globalOptions) *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Bring up, inspect and tear down the cluster gatecheck runs against",
		Long: `Providers: kind (when Docker/Podman answers and can run privileged containers; configured by
kind-config.yaml), host (a real single-node cluster of pinned upstream binaries on this machine,
Linux as root; state in /var/lib/gatecheck/host) and existing (--kubeconfig or KUBECONFIG; never
deleted). Without --cluster, up detects one; down and status use the one up last used.`,
	}
	cmd.PersistentFlags().StringVar(&f.provider, "cluster", "", "provider: kind, host or existing (default: detect)")
	cmd.PersistentFlags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster (with --cluster existing)")
	cmd.PersistentFlags().StringVar(&f.context, "context", "", "kubeconfig context of an existing cluster (with --cluster existing; default the kubeconfig's current context)")
	cmd.PersistentFlags().BoolVar(&f.keep, "keep", false, "leave a cluster that failed to come up, for debugging")

	resolve := func(ctx context.Context, remember bool) (cluster.Name, cluster.Provider, error) {
		root, _ := cluster.ModuleRoot("")
		name, why, err := cluster.Resolve(ctx, f.provider, remember, cluster.LocalMachine{ModuleRoot: root})
		if err != nil {
			return "", nil, err
		}
		g.Logger.Info("cluster provider", "provider", name, "why", why)
		p, err := cluster.New(name, cluster.Options{Kubeconfig: f.kubeconfig, Context: f.context, Keep: f.keep, ModuleRoot: root, Logger: g.Logger})
		return name, p, err
	}

	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Bring the cluster up (already up is fine) and print its kubeconfig path",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			start := time.Now()
			name, p, err := resolve(c.Context(), false)
			if err != nil {
				return withExitCode(2, err)
			}
			if err := cluster.Record(name); err != nil {
				g.Logger.Warn("could not record the provider for later commands", "error", err)
			}
			if err := p.Up(c.Context()); err != nil {
				return withExitCode(2, err)
			}
			st, err := p.Describe(c.Context())
			if err != nil {
				return withExitCode(2, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "cluster %s up: Kubernetes %s in %s\n", name, st.KubernetesVersion, time.Since(start).Round(10*time.Millisecond))
			if st.LoadBalancerPool != "" {
				fmt.Fprintf(c.OutOrStdout(), "LoadBalancer pool (MetalLB): %s\n", st.LoadBalancerPool)
			}
			fmt.Fprintf(c.OutOrStdout(), "export KUBECONFIG=%s\n", p.Kubeconfig())
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "down",
		Short: "Tear the cluster down (already down is fine; an existing cluster is never deleted)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, p, err := resolve(c.Context(), true)
			if err != nil {
				return withExitCode(2, err)
			}
			if err := p.Down(c.Context()); err != nil {
				return withExitCode(2, err)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Say whether the cluster is up, its version, kubeconfig and components",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, p, err := resolve(c.Context(), true)
			if err != nil {
				return withExitCode(2, err)
			}
			st, err := p.Describe(c.Context())
			if err != nil {
				return withExitCode(2, err)
			}
			printStatus(c.OutOrStdout(), st)
			if !st.Up {
				return withExitCode(1, fmt.Errorf("cluster %s is not up", st.Provider))
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "load-images",
		Short: "Build gatecheck's images (echo-backend, reference controller and proxy, upstream echo-basic) and load them",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, p, err := resolve(c.Context(), true)
			if err != nil {
				return withExitCode(2, err)
			}
			built, err := cluster.BuildAndLoadImages(c.Context(), p, "", nil, g.Logger)
			if err != nil {
				return withExitCode(2, err)
			}
			for _, b := range built {
				for _, t := range b.Spec.Tags {
					fmt.Fprintln(c.OutOrStdout(), t)
				}
			}
			return nil
		},
	})
	return cmd
}

func printStatus(w io.Writer, st cluster.Status) {
	state := "down"
	if st.Up {
		state = "up, Kubernetes " + st.KubernetesVersion
	}
	fmt.Fprintf(w, "provider:   %s\nstate:      %s\nkubeconfig: %s\n", st.Provider, state, st.Kubeconfig)
	if st.LoadBalancerPool != "" {
		fmt.Fprintf(w, "lb pool:    %s (MetalLB)\n", st.LoadBalancerPool)
	}
	for _, d := range st.Details {
		fmt.Fprintf(w, "  %s\n", d)
	}
}
