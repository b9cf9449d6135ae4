package all

import (
	"fmt"
	"os"
	"slices"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/suiteenv"
)

// TestSuites runs the suite GATECHECK_SUITE names against the cluster the suite environment
// describes (gatecheck run sets both; `gatecheck run` is the usual way in). Without one it walks
// every suite's tree in dry-run mode, so `make test` still proves every suite builds a valid
// Ginkgo tree (duplicate nodes, bad decorators and label typos fail here, not on a cluster).
func TestSuites(t *testing.T) {
	name := os.Getenv(suiteenv.EnvSuite)
	if name != "" {
		ok, err := Run(t, name, "")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fail()
		}
		return
	}
	sc, rc := GinkgoConfiguration()
	sc.DryRun = true
	RegisterFailHandler(Fail)
	if !RunSpecs(t, "gatecheck suites (dry run)", sc, rc) {
		t.Fatal("dry run of every suite's tree failed")
	}
}

// In the dry run, every suite's quiet flag must match its specs' labels: a quiet spec the table
// does not know of would run alongside the upstream suite, where a busy node fails correct
// implementations.
var _ = ReportAfterSuite("quiet flags match the labels", func(r Report) {
	if os.Getenv(suiteenv.EnvSuite) != "" {
		return
	}
	labelled := map[string]bool{}
	for _, sp := range r.SpecReports {
		labels := sp.Labels()
		if !slices.Contains(labels, suiteenv.QuietLabel) {
			continue
		}
		for _, l := range labels {
			if Known(l) {
				labelled[l] = true
			}
		}
	}
	for _, name := range Names() {
		if HasQuietSpecs(name) != labelled[name] {
			Fail(fmt.Sprintf("suite %s: HasQuietSpecs says %v, but specs labelled %q: %v (fix the suites table in all.go)",
				name, HasQuietSpecs(name), suiteenv.QuietLabel, labelled[name]))
		}
	}
})

func TestLabelFilter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		extra []string
		want  string
	}{
		{nil, "canary"},
		{[]string{"", " "}, "canary"},
		{[]string{"feature:weight && !slow"}, "canary && (feature:weight && !slow)"},
		{[]string{"a || b", "c"}, "canary && (a || b) && (c)"},
	} {
		if got := LabelFilter("canary", tt.extra...); got != tt.want {
			t.Errorf("LabelFilter(canary, %q) = %q; want %q", tt.extra, got, tt.want)
		}
	}
}
