package render

import (
	_ "embed"
	"html/template"
	"strings"

	"github.com/gatecheck/gatecheck/reports/model"
)

//go:embed upstream.html.tmpl
var upstreamTemplate string

func init() { template.Must(page.Parse(upstreamTemplate)) }

// upstreamView is the table of upstream tests: finished ones first (in run order), then the
// ones running when the suite stopped, then the ones that never started.
type upstreamView struct {
	Partial bool
	Reason  string
	Counts  map[string]int
	Rows    []upstreamRow
}

type upstreamRow struct {
	model.UpstreamTest
	Badge, Label, ProfileText string
	// Known is why the profile documents this test as failing (conformance.knownFailures).
	Known string
}

// newUpstreamView tabulates u; conf's known failures label the documented tests.
func newUpstreamView(u *model.Upstream, conf *model.Conformance) *upstreamView {
	if u == nil {
		return nil
	}
	v := &upstreamView{Partial: u.Partial, Reason: u.Reason, Counts: map[string]int{}}
	c := u.Counts()
	for _, r := range []model.UpstreamResult{model.UpstreamPassed, model.UpstreamFailed, model.UpstreamSkipped, model.UpstreamRunning, model.UpstreamNotStarted} {
		v.Counts[string(r)] = c[r] // every key, so the template never prints "<no value>"
	}
	for _, group := range [][]model.UpstreamResult{
		{model.UpstreamPassed, model.UpstreamFailed, model.UpstreamSkipped}, {model.UpstreamRunning}, {model.UpstreamNotStarted},
	} {
		for _, t := range u.Tests {
			if !contains(group, t.Result) {
				continue
			}
			row := upstreamRow{UpstreamTest: t, Badge: string(t.Result), Label: string(t.Result), Known: conf.KnownFailure(t.Name)}
			if row.Known != "" && t.Result == model.UpstreamFailed {
				row.Badge, row.Label = "skipped", "known failure"
			}
			switch t.Result {
			case model.UpstreamRunning:
				row.Badge, row.Label = "interrupted", "running at stop"
			case model.UpstreamNotStarted:
				row.Badge, row.Label = "unknown", "never started"
				if t.SkipReason != "" {
					row.SkipReason = "would have been skipped: " + t.SkipReason
				}
			}
			var ps []string
			for _, p := range t.Profiles {
				ps = append(ps, p.Name+" "+p.Level)
			}
			row.ProfileText = strings.Join(ps, ", ")
			v.Rows = append(v.Rows, row)
		}
	}
	return v
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
