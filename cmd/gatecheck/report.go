package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/runner"
)

func init() { subcommands = append(subcommands, newReportCmd) }

func newReportCmd(g *globalOptions) *cobra.Command {
	var in []string
	var conformance, gateFile, out string
	cmd := &cobra.Command{
		Use:   "report --in results.json [--in more.json] [--conformance conformance-report.yaml] --out DIR",
		Short: "Re-render a saved run as report.json, report.html, junit.xml and conformance-report.yaml, and gate it",
		Long: `report reads saved results (a gatecheck report.json, or Ginkgo JSON reports written with
--json-report / -ginkgo.json-report), adds the upstream ConformanceReport if given, evaluates the
gate file (default: the built-in gate) and writes every report format into --out.

Exit code: 0 the gate passed, 1 a gated verdict failed, 2 the run could not complete or the
results could not be read. See reports/README.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(in) == 0 {
				return withExitCode(2, errors.New("no results: pass --in results.json"))
			}
			var parts []*model.Report
			for _, p := range in {
				r, err := ingest.ReadFile(p)
				if err != nil {
					return withExitCode(2, err)
				}
				parts = append(parts, r)
			}
			r, err := ingest.Combine(parts...)
			if err != nil {
				return withExitCode(2, err)
			}
			if conformance != "" {
				if r.Conformance, err = ingest.ReadConformanceFile(conformance); err != nil {
					return withExitCode(2, err)
				}
				r.FillRunFromConformance()
			}
			var gt *gate.Gate
			name := "built-in default"
			if gateFile != "" {
				if gt, err = gate.Load(gateFile); err != nil {
					return withExitCode(2, err)
				}
				name = gateFile
			}
			res, err := runner.Finish(r, gt, name, out)
			for _, p := range res.Files {
				g.Logger.Info("wrote report", "path", p)
			}
			if err != nil {
				return withExitCode(2, err)
			}
			code, reasons := res.ExitCode, res.Reasons
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "gate (%s): exit %d\n", name, code)
			for _, why := range reasons {
				fmt.Fprintf(w, "  - %s\n", why)
			}
			if code != 0 {
				return withExitCode(code, fmt.Errorf("gate %s failed with %d reason(s), listed above", name, len(reasons)))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&in, "in", nil, "results file: a gatecheck report.json or a Ginkgo JSON report (repeatable)")
	f.StringVar(&conformance, "conformance", "", "upstream ConformanceReport YAML to embed (written out unmodified)")
	f.StringVar(&gateFile, "gate", "", "gate file (YAML); default: the built-in gate (reports/gate/default.yaml)")
	f.StringVar(&out, "out", "reports/out", "directory to write the reports into")
	return cmd
}
