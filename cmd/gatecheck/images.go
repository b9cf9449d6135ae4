package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/runner"
)

func init() { subcommands = append(subcommands, newImagesCmd) }

func newImagesCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "The images gatecheck builds (no container engine, no registry) and their references",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the images a profile's images.build may name, with the references each is tagged with",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			for _, s := range append(images.Default(), images.Gatecheck()) {
				fmt.Fprintf(c.OutOrStdout(), "%-13s %s\n", s.Name, strings.Join(s.Tags, " "))
			}
			for _, s := range images.OnRequest() {
				fmt.Fprintf(c.OutOrStdout(), "%-13s %s (built only when named: a third-party implementation from the module proxy)\n", s.Name, strings.Join(s.Tags, " "))
			}
			return nil
		},
	})
	var out string
	build := &cobra.Command{
		Use:   "build [NAME...]",
		Short: "Build image archives (docker-archive tarballs) from gatecheck's source; default all",
		Long: `build compiles the named images (default: every image of 'gatecheck images list' but those
built only when named, such as traefik) from the
gatecheck checkout, or from the Go module cache for an installed gatecheck, and writes one
docker-archive tarball per image to --out. Archives are named by a fingerprint of what they are
built from, so building again with nothing changed compiles nothing. It prints one archive path
per line.`,
		RunE: func(c *cobra.Command, names []string) error {
			specs, err := imageSpecs(names)
			if err != nil {
				return withExitCode(2, err)
			}
			root, err := cluster.SourceRoot(c.Context())
			if err != nil {
				return withExitCode(2, err)
			}
			built, err := images.Builder{ModuleRoot: root, OutDir: out, Logger: g.Logger}.Build(c.Context(), specs)
			if err != nil {
				return withExitCode(2, err)
			}
			for _, b := range built {
				fmt.Fprintln(c.OutOrStdout(), b.Archive)
			}
			return nil
		},
	}
	build.Flags().StringVar(&out, "out", filepath.Join(cluster.CacheDir(), "images"), "directory for the archives")
	cmd.AddCommand(build)
	var registry string
	var insecure bool
	push := &cobra.Command{
		Use:   "push --registry HOST:PORT[/prefix] [NAME...]",
		Short: "Build images (default all) and push them to a registry, printing each reference and its pushed one",
		Long: `push builds the named images as build does and pushes each under every tag to --registry
(what gatecheck run --registry does before a run), as HOST:PORT[/prefix]/<original registry>/<repository>:<tag>.
Use it to install an implementation beforehand from images its nodes can pull (install.kind none).`,
		RunE: func(c *cobra.Command, names []string) error {
			if registry == "" {
				return withExitCode(2, fmt.Errorf("--registry: required"))
			}
			reg, err := cluster.ParseRegistry(registry, insecure)
			if err != nil {
				return withExitCode(2, err)
			}
			if err := reg.Ping(c.Context()); err != nil {
				return withExitCode(2, err)
			}
			specs, err := imageSpecs(names)
			if err != nil {
				return withExitCode(2, err)
			}
			root, err := cluster.SourceRoot(c.Context())
			if err != nil {
				return withExitCode(2, err)
			}
			built, err := images.Builder{ModuleRoot: root, OutDir: out, Logger: g.Logger}.Build(c.Context(), specs)
			if err != nil {
				return withExitCode(2, err)
			}
			var archives []string
			for _, b := range built {
				archives = append(archives, b.Archive)
			}
			if _, err := cluster.Push(c.Context(), reg, archives, c.OutOrStdout()); err != nil {
				return withExitCode(2, err)
			}
			return nil
		},
	}
	push.Flags().StringVar(&out, "out", filepath.Join(cluster.CacheDir(), "images"), "directory for the archives")
	push.Flags().StringVar(&registry, "registry", "", "HOST:PORT[/prefix] of the registry (plain HTTP for loopback)")
	push.Flags().BoolVar(&insecure, "registry-insecure", false, "speak plain HTTP to a --registry that is not on loopback")
	cmd.AddCommand(push)
	return cmd
}

// imageSpecs returns the image specs named, each required; with no names, the default cluster
// images (gatecheck's own image and the on-request ones, such as Traefik, only by name).
func imageSpecs(names []string) ([]images.Spec, error) {
	if len(names) == 0 {
		return required(images.Default()), nil
	}
	all := required(append(append(images.Default(), images.Gatecheck()), images.OnRequest()...))
	var specs []images.Spec
	for _, n := range names {
		i := slices.IndexFunc(all, func(s images.Spec) bool { return s.Name == n })
		if i < 0 {
			known := make([]string, len(all))
			for j, s := range all {
				known[j] = s.Name
			}
			return nil, fmt.Errorf("unknown image %q (known: %s)", n, strings.Join(known, ", "))
		}
		specs = append(specs, all[i])
	}
	return specs, nil
}

func required(ss []images.Spec) []images.Spec {
	for i := range ss {
		ss[i].Required = true
	}
	return ss
}

// Reference is the reference image name is built as (its first tag), for install.helm.images.
func (b imageBuilder) Reference(name string) (string, error) {
	specs, err := imageSpecs([]string{name})
	if err != nil {
		return "", fmt.Errorf("profile images.build: %w", err)
	}
	return specs[0].Tags[0], nil
}

var _ runner.ImageReferencer = imageBuilder{}
