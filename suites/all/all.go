// Package all is every gatecheck suite in one Ginkgo tree, so one binary (the gatecheck command
// itself, or `go test ./suites/all`) runs any of them, selected by name; nothing is compiled at
// run time.
package all

import (
	"fmt"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/suites/canary"
	"github.com/gatecheck/gatecheck/suites/grpc"
	"github.com/gatecheck/gatecheck/suites/migration"
	"github.com/gatecheck/gatecheck/suites/mirror"
	"github.com/gatecheck/gatecheck/suites/propagation"
	"github.com/gatecheck/gatecheck/suites/sidecar"
	"github.com/gatecheck/gatecheck/suites/suiteenv"
	"github.com/gatecheck/gatecheck/suites/tcp"
	"github.com/gatecheck/gatecheck/suites/udp"
)

// suites are gatecheck's suites in the order a run takes them. A suite's name is also the
// Ginkgo label every one of its top-level containers carries, which is how Run selects it.
//
// quiet says the suite has specs labelled suiteenv.QuietLabel (TestSuites checks it against
// the labels): the runner runs those apart from the suite's other specs.
var suites = []struct {
	name  string
	setup func(SpecContext)
	quiet bool
}{
	{"canary", canary.Setup, false},
	{"grpc", grpc.Setup, false},
	{"mirror", mirror.Setup, true},
	{"migration", migration.Setup, false},
	{"propagation", propagation.Setup, false},
	{"sidecar", sidecar.Setup, true},
	{"tcp", tcp.Setup, false},
	{"udp", udp.Setup, true},
}

// Names lists the suites, in run order.
func Names() []string {
	out := make([]string, len(suites))
	for i, s := range suites {
		out[i] = s.name
	}
	return out
}

// Known reports whether name is a suite.
func Known(name string) bool {
	for _, s := range suites {
		if s.name == name {
			return true
		}
	}
	return false
}

// HasQuietSpecs reports whether the suite has specs labelled suiteenv.QuietLabel.
func HasQuietSpecs(name string) bool {
	for _, s := range suites {
		if s.name == name {
			return s.quiet
		}
	}
	return false
}

// There is one BeforeSuite per Ginkgo tree: it sets up the suite Run selected. Ginkgo runs it
// only when at least one spec survives the label filter.
var _ = BeforeSuite(func(ctx SpecContext) {
	name := os.Getenv(suiteenv.EnvSuite)
	for _, s := range suites {
		if s.name == name {
			s.setup(ctx)
			return
		}
	}
	Fail(fmt.Sprintf("%s=%q names no suite (known: %s)", suiteenv.EnvSuite, name, strings.Join(Names(), ", ")))
})

// Run runs the named suite's specs, narrowed by the Ginkgo label filter labels (and by any
// -ginkgo.label-filter already parsed), with Ginkgo's configuration from its flags
// (-ginkgo.json-report, -ginkgo.v, ...). It reports whether every selected spec passed.
func Run(t GinkgoTestingT, name, labels string) (bool, error) {
	if !Known(name) {
		return false, fmt.Errorf("suite %q: no such suite (known: %s)", name, strings.Join(Names(), ", "))
	}
	if err := os.Setenv(suiteenv.EnvSuite, name); err != nil {
		return false, err
	}
	sc, rc := GinkgoConfiguration()
	sc.LabelFilter = LabelFilter(name, labels, sc.LabelFilter)
	RegisterFailHandler(Fail)
	return RunSpecs(t, "gatecheck "+name, sc, rc), nil
}

// LabelFilter is the filter that selects suite's specs, narrowed by each non-empty extra filter.
func LabelFilter(suite string, extra ...string) string {
	f := suite
	for _, e := range extra {
		if strings.TrimSpace(e) != "" {
			f += " && (" + e + ")"
		}
	}
	return f
}
