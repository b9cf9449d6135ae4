package gate

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"slices"
	"strings"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/reports/model"
)

// Exit codes of a gated run.
const (
	CodePass       = 0 // every required suite and profile passed
	CodeFail       = 1 // a verdict failed
	CodeIncomplete = 2 // the run could not complete
)

//go:embed default.yaml
var defaultYAML []byte

// Gate is a gate file.
type Gate struct {
	// Version of the gate file format; 1.
	Version int `json:"version"`
	// Suites are matched to each suite by name in order; the first match applies. A suite no
	// rule matches must pass, skips allowed.
	Suites []SuiteRule `json:"suites,omitempty"`
	Specs  SpecRules   `json:"specs,omitempty"`
	// Profiles are matched to each conformance profile by name in order; the first match
	// applies. A profile no rule matches is not gated.
	Profiles []ProfileRule `json:"profiles,omitempty"`
	// Tolerances are overrides the suites read by key (see Tolerance).
	Tolerances map[string]float64 `json:"tolerances,omitempty"`
}

// Policy says whether a suite's failures fail the gate.
type Policy string

const (
	MustPass Policy = "must-pass"
	MayFail  Policy = "may-fail"
)

// SuiteRule gates the suites whose name matches Name.
type SuiteRule struct {
	// Name is a suite name (Ginkgo's suite description) or a path.Match pattern.
	Name string `json:"name"`
	// Policy defaults to must-pass.
	Policy Policy `json:"policy,omitempty"`
	// AllowSkips, when false, makes a skipped or pending spec fail the gate. Defaults to true.
	AllowSkips *bool `json:"allowSkips,omitempty"`
	// Required makes a missing suite (no suite matches Name) mean the run did not complete.
	Required bool `json:"required,omitempty"`
}

// SpecRules single out specs across suites.
type SpecRules struct {
	// MayFail lists specs whose failure does not fail the gate.
	MayFail []SpecMatch `json:"mayFail,omitempty"`
}

// SpecMatch matches a spec by a label it carries, or by a path.Match pattern on its full name;
// when both are set, both must match.
type SpecMatch struct {
	Label string `json:"label,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Requirement is the least conformance result a profile level must reach.
type Requirement string

const (
	RequireSuccess Requirement = "success" // result success
	RequirePartial Requirement = "partial" // success or partial (skips, no failures)
	RequireAny     Requirement = "any"     // not gated
)

// ProfileRule gates upstream conformance profiles.
type ProfileRule struct {
	// Name is a profile name (GATEWAY-HTTP, ...) or a path.Match pattern.
	Name     string      `json:"name"`
	Core     Requirement `json:"core,omitempty"`
	Extended Requirement `json:"extended,omitempty"`
	// Required makes a missing profile, or a missing ConformanceReport, mean the run did not
	// complete.
	Required bool `json:"required,omitempty"`
}

// Default is gatecheck's default gate (default.yaml in this package).
func Default() *Gate {
	g, err := Parse("default gate", defaultYAML)
	if err != nil {
		panic(fmt.Sprintf("embedded default gate is invalid: %v", err)) // a build defect, caught by tests
	}
	return g
}

// Load reads the gate file at path.
func Load(file string) (*Gate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read gate file: %w", err)
	}
	return Parse(file, data)
}

// Parse reads a gate file's YAML; name names it in errors. Unknown fields are errors, so that
// a misspelt rule is not silently ignored.
func Parse(name string, data []byte) (*Gate, error) {
	var g Gate
	if err := yaml.UnmarshalStrict(data, &g); err != nil {
		return nil, fmt.Errorf("gate file %s: %w", name, err)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("gate file %s: %w", name, err)
	}
	return &g, nil
}

// Validate checks the gate's fields.
func (g *Gate) Validate() error {
	var errs []error
	if g.Version != 1 {
		errs = append(errs, fmt.Errorf("version %d: want 1", g.Version))
	}
	for i, r := range g.Suites {
		if err := checkPattern(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("suites[%d].name: %w", i, err))
		}
		if r.Policy != "" && r.Policy != MustPass && r.Policy != MayFail {
			errs = append(errs, fmt.Errorf("suites[%d].policy %q: want must-pass or may-fail", i, r.Policy))
		}
	}
	for i, m := range g.Specs.MayFail {
		if m.Label == "" && m.Name == "" {
			errs = append(errs, fmt.Errorf("specs.mayFail[%d]: set label or name", i))
		}
		if m.Name != "" {
			if err := checkPattern(m.Name); err != nil {
				errs = append(errs, fmt.Errorf("specs.mayFail[%d].name: %w", i, err))
			}
		}
	}
	for i, r := range g.Profiles {
		if err := checkPattern(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("profiles[%d].name: %w", i, err))
		}
		for field, q := range map[string]Requirement{"core": r.Core, "extended": r.Extended} {
			switch q {
			case "", RequireSuccess, RequirePartial, RequireAny:
			default:
				errs = append(errs, fmt.Errorf("profiles[%d].%s %q: want success, partial or any", i, field, q))
			}
		}
	}
	for k, v := range g.Tolerances {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("tolerances[%q] %v: want a finite number", k, v))
		}
	}
	return errors.Join(errs...)
}

func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty; want a name or a pattern such as \"*\"")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", p, err)
	}
	return nil
}

func match(pattern, name string) bool {
	ok, _ := path.Match(pattern, name) // patterns were checked in Validate
	return ok
}

// Tolerance returns the override for key, or def when the gate has none. Keys are the suites'
// own (see reports/README.md), e.g. "weightTolerancePts".
func (g *Gate) Tolerance(key string, def float64) float64 {
	if g == nil {
		return def
	}
	if v, ok := g.Tolerances[key]; ok {
		return v
	}
	return def
}

func (g *Gate) suiteRule(name string) SuiteRule {
	for _, r := range g.Suites {
		if match(r.Name, name) {
			return r
		}
	}
	return SuiteRule{Name: name, Policy: MustPass}
}

func (g *Gate) mayFail(sp model.Spec) bool {
	for _, m := range g.Specs.MayFail {
		if (m.Label == "" || slices.Contains(sp.Labels, m.Label)) && (m.Name == "" || match(m.Name, sp.Name)) {
			return true
		}
	}
	return false
}

// Apply evaluates r and records the verdict in r.Gate, so that the rendered reports show it;
// name says which gate file was used.
func (g *Gate) Apply(r *model.Report, name string) (code int, reasons []string) {
	code, reasons = g.Evaluate(r)
	if r != nil {
		r.Gate = &model.GateResult{File: name, Code: code, Reasons: reasons}
	}
	return code, reasons
}

// Evaluate gates r with the default gate.
func Evaluate(r *model.Report) (code int, reasons []string) { return Default().Evaluate(r) }

// Evaluate returns the run's exit code and every reason for it: 2 when the run could not
// complete (it was interrupted, a suite could not set up or was skipped for any reason but
// unclaimed features, a spec panicked or was aborted, a required suite or profile is missing),
// else 1 when a gated verdict failed, else 0. A spec or suite skipped because the GatewayClass
// does not claim a feature it needs (model.OutcomeNotClaimed) is never 2: it is a skip. The gate
// reads spec outcomes, not measurement decisions: a suite fails its spec when a verdict fails.
func (g *Gate) Evaluate(r *model.Report) (code int, reasons []string) {
	var incomplete, failed []string
	if r == nil || (len(r.Suites) == 0 && r.Conformance == nil) {
		return CodeIncomplete, []string{"the report holds no suite results and no ConformanceReport"}
	}
	for _, why := range r.Run.Incomplete {
		incomplete = append(incomplete, "run incomplete: "+why)
	}
	if r.Conformance != nil && r.Conformance.Partial {
		// Built from the tests that finished before the upstream suite stopped: never a pass.
		incomplete = append(incomplete, "the ConformanceReport is partial: the upstream suite did not complete")
	}
	for _, rule := range g.Suites {
		if rule.Required && !slices.ContainsFunc(r.Suites, func(s model.Suite) bool { return match(rule.Name, s.Name) }) {
			incomplete = append(incomplete, fmt.Sprintf("required suite %q is missing from the report", rule.Name))
		}
	}
	for _, s := range r.Suites {
		rule := g.suiteRule(s.Name)
		if rule.Policy == MayFail {
			continue
		}
		allowSkips := rule.AllowSkips == nil || *rule.AllowSkips
		for _, why := range s.FailureReasons {
			incomplete = append(incomplete, fmt.Sprintf("suite %q: %s", s.Name, why))
		}
		for _, sp := range s.Specs {
			if sp.Outcome == model.OutcomePassed || g.mayFail(sp) {
				continue
			}
			setup := sp.NodeType != "" && sp.NodeType != "It"
			what := fmt.Sprintf("suite %q spec %q", s.Name, sp.Name)
			switch {
			case sp.Outcome == model.OutcomeNotClaimed:
				// Never "could not run": the implementation does not claim the feature, so it
				// is not judged on it. Only a gate that allows no skips turns it into a failure.
				if !allowSkips {
					failed = append(failed, fmt.Sprintf("%s was not claimed: the GatewayClass does not claim %s (the gate allows no skips in this suite)",
						what, strings.Join(sp.NotClaimed, ", ")))
				}
			case sp.Outcome.NotRun():
				if !allowSkips {
					failed = append(failed, fmt.Sprintf("%s was %s (the gate allows no skips in this suite)%s", what, sp.Outcome, suffix(sp.SkipReason)))
				}
			case sp.Outcome.Broken() || setup:
				incomplete = append(incomplete, fmt.Sprintf("%s could not run (%s)%s", what, sp.Outcome, suffix(failureLine(sp))))
			default:
				failed = append(failed, fmt.Sprintf("%s %s%s", what, sp.Outcome, suffix(failureLine(sp))))
			}
		}
	}
	pi, pf := g.evaluateProfiles(r.Conformance)
	incomplete = append(incomplete, pi...)
	failed = append(failed, pf...)
	switch {
	case len(incomplete) > 0:
		return CodeIncomplete, append(incomplete, failed...)
	case len(failed) > 0:
		return CodeFail, failed
	}
	return CodePass, nil
}

func (g *Gate) evaluateProfiles(c *model.Conformance) (incomplete, failed []string) {
	if c == nil {
		for _, rule := range g.Profiles {
			if rule.Required {
				incomplete = append(incomplete, fmt.Sprintf("profile %q is required but the run has no ConformanceReport", rule.Name))
			}
		}
		return incomplete, nil
	}
	for _, rule := range g.Profiles {
		if rule.Required && !slices.ContainsFunc(c.Report.ProfileReports, func(p confv1.ProfileReport) bool { return match(rule.Name, p.Name) }) {
			incomplete = append(incomplete, fmt.Sprintf("required profile %q is missing from the ConformanceReport", rule.Name))
		}
	}
	for _, p := range c.Report.ProfileReports {
		i := slices.IndexFunc(g.Profiles, func(r ProfileRule) bool { return match(r.Name, p.Name) })
		if i < 0 {
			continue
		}
		rule := g.Profiles[i]
		if why := unmet(rule.Core, p.Core, c); why != "" {
			failed = append(failed, fmt.Sprintf("profile %s core: %s", p.Name, why))
		}
		if p.Extended != nil {
			if why := unmet(rule.Extended, p.Extended.Status, c); why != "" {
				failed = append(failed, fmt.Sprintf("profile %s extended: %s", p.Name, why))
			}
		}
	}
	return incomplete, failed
}

// unmet says how st falls short of q, or "" when it does not. A failed test the profile
// documents as a known failure (c.KnownFailures) counts as if it had not failed: failures only
// of documented tests leave the result a success, or partial when tests were skipped.
func unmet(q Requirement, st confv1.Status, c *model.Conformance) string {
	var unknown, known []string
	for _, t := range st.FailedTests {
		if c.KnownFailure(t) != "" {
			known = append(known, t)
		} else {
			unknown = append(unknown, t)
		}
	}
	result := st.Result
	if st.Result == confv1.Failure && len(unknown) == 0 && len(known) > 0 {
		result = confv1.Success
		if len(st.SkippedTests) > 0 {
			result = confv1.Partial
		}
	}
	ok := false
	switch q {
	case "", RequireAny:
		return ""
	case RequireSuccess:
		ok = result == confv1.Success
	case RequirePartial:
		ok = result == confv1.Success || result == confv1.Partial
	}
	if ok {
		return ""
	}
	var detail []string
	if len(unknown) > 0 {
		detail = append(detail, "failed "+strings.Join(unknown, ", "))
	}
	if len(known) > 0 {
		detail = append(detail, "known failures (documented, not counted) "+strings.Join(known, ", "))
	}
	if len(st.SkippedTests) > 0 {
		detail = append(detail, "skipped "+strings.Join(st.SkippedTests, ", "))
	}
	return fmt.Sprintf("result %q; the gate requires %s%s", st.Result, q, suffix(strings.Join(detail, "; ")))
}

func failureLine(sp model.Spec) string {
	if sp.Failure == nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(sp.Failure.Message), "\n")
	return line
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
