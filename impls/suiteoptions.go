package impls

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	conformanceconfig "sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/yaml"
)

// SuiteOptions are the upstream conformance suite's options a profile may set, each passed as
// the flag of sigs.k8s.io/gateway-api/conformance v1.6.3 (utils/flags/flags.go) named below.
// The suite itself accepts most of them silently when malformed (an unknown timeout name, a
// label without "=", a misspelt key in the options file): Validate rejects them instead.
type SuiteOptions struct {
	// RunTest runs only this upstream test (--run-test), for development: the report then holds
	// one test and is not a conformance claim.
	RunTest string `json:"runTest,omitempty"`
	// Mode is the implementation's operating mode, recorded in the ConformanceReport (--mode);
	// the suite's default is "default".
	Mode string `json:"mode,omitempty"`
	// SkipProvisionalTests skips tests marked provisional (--skip-provisional-tests).
	SkipProvisionalTests bool `json:"skipProvisionalTests,omitempty"`
	// AllowCRDsMismatch lets the suite run on CRDs of another bundle version or channel than
	// its own (--allow-crds-mismatch); the results are then not a valid claim.
	AllowCRDsMismatch bool `json:"allowCrdsMismatch,omitempty"`
	// UsableAddress and UnusableAddress are an IP or hostname the GatewayStaticAddresses test
	// may and may not get (--usable-address, --unusable-address).
	UsableAddress   string `json:"usableAddress,omitempty"`
	UnusableAddress string `json:"unusableAddress,omitempty"`
	// NamespaceLabels are added to the suite's namespaces (--namespace-labels), e.g. a mesh's
	// injection label.
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`
	// TimeoutConfig overrides the suite's timeouts by their upstream names
	// (--timeout-config-overrides): durations in whole seconds ("90s", "3m"), and
	// RequiredConsecutiveSuccesses a count.
	TimeoutConfig map[string]TimeoutValue `json:"timeoutConfig,omitempty"`
	// Parallel is how many of the suite's parallel tests run at once (go test's
	// -test.parallel); 0 or absent leaves go test's default, GOMAXPROCS of the runner. Most of
	// the 36 tests of v1.6.3 marked parallel create Gateways, so a higher value suits a
	// cluster that starts many data planes at once: on the 2-core host cluster 8 made the
	// reference's proxy Pods queue and the suite slower (3m59s instead of ~2m) with a 60 s
	// Programmed wait timing out. 1 runs them one at a time.
	Parallel int `json:"parallel,omitempty"`
	// OptionsFile is a YAML file of the suite's ConformanceOptions (--conformance-options-file),
	// relative to the profile's directory, for the options no field above covers (meshName,
	// namespaceAnnotations, disableParallelTests, ...). Flags win over the file, so it may not
	// set what the profile sets elsewhere.
	OptionsFile string `json:"optionsFile,omitempty"`
}

// MaxParallel bounds conformance.parallel: more tests at once than the suite has parallel tests
// changes nothing, and a typo such as 800 should not pass silently.
const MaxParallel = 64

// TimeoutValue is a timeoutConfig value as written: "90s", or a bare count.
type TimeoutValue string

func (v *TimeoutValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = TimeoutValue(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("timeout %s: want a duration such as \"90s\" or a count", b)
	}
	*v = TimeoutValue(n.String())
	return nil
}

// countTimeouts are the timeoutConfig names that are counts, not durations.
var countTimeouts = map[string]bool{"RequiredConsecutiveSuccesses": true}

// TimeoutNames are the names --timeout-config-overrides understands, found by asking the
// pinned upstream parser about every field of its TimeoutConfig: it ignores unknown names.
func TimeoutNames() []string {
	var out []string
	typ := reflect.TypeFor[conformanceconfig.TimeoutConfig]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		var cfg conformanceconfig.TimeoutConfig
		conformanceconfig.ParseTimeoutOverrides(&cfg, name+":7")
		if !reflect.ValueOf(cfg).IsZero() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TimeoutOverrides renders timeoutConfig as --timeout-config-overrides wants it: "Name:seconds"
// pairs joined by ";", sorted by name. The values must have passed Validate.
func (o SuiteOptions) TimeoutOverrides() string {
	var pairs []string
	for name, v := range o.TimeoutConfig {
		n, _ := timeoutSeconds(name, v)
		pairs = append(pairs, fmt.Sprintf("%s:%d", name, n))
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ";")
}

// timeoutSeconds is v as the flag's integer: seconds, or the count.
func timeoutSeconds(name string, v TimeoutValue) (int, error) {
	s := strings.TrimSpace(string(v))
	if countTimeouts[name] {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%q: want a whole count of at least 1", s)
		}
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as \"90s\" or \"3m\"", s)
	}
	if d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("%q: want whole seconds of at least 1s (the suite takes seconds)", s)
	}
	return int(d / time.Second), nil
}

// NamespaceLabelsFlag renders namespaceLabels as --namespace-labels wants it: "k=v" pairs
// joined by ",", sorted by key.
func (o SuiteOptions) NamespaceLabelsFlag() string {
	var pairs []string
	for k, v := range o.NamespaceLabels {
		pairs = append(pairs, k+"="+v)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// OptionsPath is the options file's absolute path (relative paths resolve against dir, the
// profile's directory), or "" when the profile names none.
func (o SuiteOptions) OptionsPath(dir string) string {
	if o.OptionsFile == "" {
		return ""
	}
	p := o.OptionsFile
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p
}

// testName is the shape of an upstream test's ShortName (HTTPRouteWeight, GRPCExactMethodMatching).
var testName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// modeName is the shape of a mode: the suite records it in the ConformanceReport and the
// reports' file names and paths in the upstream repository use it.
var modeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// OptionsFileKeys are the top-level keys of the upstream suite's options file (the JSON names
// of suite.ConfigurableOptions, v1.6.3), each mapped to the profile field that sets the same
// option, or "" when no profile field does. A key with a field is refused in the file: the flag
// gatecheck passes would silently win over it. (The test checks this list against the type.)
var OptionsFileKeys = map[string]string{
	"gatewayClassName":           "gatewayClass.name",
	"meshName":                   "",
	"debug":                      "",
	"namespaceLabels":            "conformance.namespaceLabels",
	"namespaceAnnotations":       "",
	"reportOutputPath":           "(set by gatecheck: the report goes to the run's directory)",
	"cleanupBaseResources":       "(set by gatecheck: true)",
	"cleanupTestResources":       "",
	"supportedFeatures":          "conformance.supportedFeatures",
	"exemptFeatures":             "conformance.exemptFeatures",
	"enableAllSupportedFeatures": "",
	"timeoutConfig":              "conformance.timeoutConfig",
	"skipTests":                  "conformance.skipTests",
	"skipProvisionalTests":       "conformance.skipProvisionalTests",
	"disableParallelTests":       "",
	"runTest":                    "conformance.runTest",
	"mode":                       "conformance.mode",
	"allowCrdsMismatch":          "conformance.allowCrdsMismatch",
	"implementation":             "conformance.report",
	"conformanceProfiles":        "conformance.profiles",
	"failFast":                   "",
	"usableNetworkAddresses":     "",
	"unusableNetworkAddresses":   "",
}

// validateSuiteOptions returns one error per problem, each naming its field; dir is the
// profile's directory.
func (c Conformance) validateSuiteOptions(dir string) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	o := c.SuiteOptions
	if o.RunTest != "" && !testName.MatchString(o.RunTest) {
		add("conformance.runTest: %q is not an upstream test name (like HTTPRouteWeight)", o.RunTest)
	}
	for i, t := range c.SkipTests {
		if !testName.MatchString(t) {
			add("conformance.skipTests[%d]: %q is not an upstream test name (like HTTPRouteWeight)", i, t)
		}
		if t == o.RunTest {
			add("conformance.skipTests[%d]: %q is also conformance.runTest: nothing would run", i, t)
		}
	}
	if o.Mode != "" && (!modeName.MatchString(o.Mode) || len(o.Mode) > 63) {
		add("conformance.mode: %q: want lower-case letters, digits and '-' (e.g. default)", o.Mode)
	}
	for field, a := range map[string]string{"usableAddress": o.UsableAddress, "unusableAddress": o.UnusableAddress} {
		if a == "" {
			continue
		}
		if _, err := netip.ParseAddr(a); err != nil && len(validation.IsDNS1123Subdomain(a)) > 0 {
			add("conformance.%s: %q is neither an IP address nor a DNS hostname", field, a)
		}
	}
	if o.UsableAddress != "" && o.UsableAddress == o.UnusableAddress {
		add("conformance.unusableAddress: %q is also conformance.usableAddress", o.UnusableAddress)
	}
	for _, k := range sortedKeys(o.NamespaceLabels) {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			add("conformance.namespaceLabels: key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(o.NamespaceLabels[k]); len(msgs) > 0 {
			add("conformance.namespaceLabels[%s]: value %q: %s", k, o.NamespaceLabels[k], strings.Join(msgs, "; "))
		}
	}
	known := TimeoutNames()
	for _, name := range sortedKeys(o.TimeoutConfig) {
		if !slices.Contains(known, name) {
			add("conformance.timeoutConfig: unknown timeout %q (the suite would ignore it; known: %s)", name, strings.Join(known, ", "))
			continue
		}
		if _, err := timeoutSeconds(name, o.TimeoutConfig[name]); err != nil {
			add("conformance.timeoutConfig.%s: %v", name, err)
		}
	}
	if o.Parallel < 0 || o.Parallel > MaxParallel {
		add("conformance.parallel: %d: want 1 to %d (0 or absent: go test's default)", o.Parallel, MaxParallel)
	}
	if o.OptionsFile != "" {
		errs = append(errs, checkOptionsFile(o.OptionsFile, o.OptionsPath(dir))...)
	}
	return errs
}

// checkOptionsFile reads the options file at path (as written: name) and refuses unknown keys
// and keys the profile sets elsewhere.
func checkOptionsFile(name, path string) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{fmt.Errorf("conformance.optionsFile %q: %w", name, err)}
	}
	var top map[string]json.RawMessage
	if err := yaml.Unmarshal(data, &top); err != nil {
		return []error{fmt.Errorf("conformance.optionsFile %q (%s): %w", name, path, err)}
	}
	var errs []error
	for _, k := range sortedKeys(top) {
		field, ok := OptionsFileKeys[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("conformance.optionsFile %q: unknown key %q (the suite would ignore it; known: %s)", name, k, strings.Join(sortedKeys(OptionsFileKeys), ", ")))
		case field != "":
			errs = append(errs, fmt.Errorf("conformance.optionsFile %q: key %q: set it in the profile (%s), not in the file, whose value the flag gatecheck passes would override", name, k, field))
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
