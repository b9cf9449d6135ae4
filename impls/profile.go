package impls

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify a profile document.
const (
	APIVersion = "gatecheck.dev/v1alpha1"
	Kind       = "ImplementationProfile"
)

// Profile describes one Gateway API implementation under test.
type Profile struct {
	APIVersion  string `json:"apiVersion"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`

	GatewayClass GatewayClass `json:"gatewayClass"`
	Install      Install      `json:"install"`
	CRDs         CRDs         `json:"crds,omitempty"`
	Images       Images       `json:"images,omitempty"`
	Conformance  Conformance  `json:"conformance,omitempty"`
	Reach        Reach        `json:"reach,omitempty"`
	Readiness    Readiness    `json:"readiness,omitempty"`

	// Dir is the profile's directory; relative paths in the profile resolve against it.
	Dir string `json:"-"`
}

// GatewayClass names the class the suites use and the controller that must accept it.
type GatewayClass struct {
	Name           string `json:"name"`
	ControllerName string `json:"controllerName"`
	// Create makes gatecheck create the GatewayClass when the install does not.
	Create bool `json:"create,omitempty"`
	// AcceptTimeout bounds the wait for Accepted=True; default 2m.
	AcceptTimeout Duration `json:"acceptTimeout,omitempty"`
}

// InstallKind says how an implementation is installed.
type InstallKind string

const (
	InstallManifests InstallKind = "manifests"
	InstallHelm      InstallKind = "helm"
	InstallScript    InstallKind = "script"
	// InstallNone: the implementation is already installed (a platform team's cluster, or an
	// implementation's CI that installs with its own tooling). gatecheck checks its readiness
	// and GatewayClass only, and never removes it.
	InstallNone InstallKind = "none"
)

// Install is how to install (and remove) the implementation.
type Install struct {
	Kind InstallKind `json:"kind"`
	// Manifests are files or globs, applied in order with server-side apply (kind manifests).
	Manifests []string `json:"manifests,omitempty"`
	Helm      *Helm    `json:"helm,omitempty"`
	Script    *Script  `json:"script,omitempty"`
}

// Script installs with a script; it gets KUBECONFIG and GATECHECK_PROFILE_DIR in its
// environment. Uninstall, when set, is run on teardown.
type Script struct {
	Install   []string `json:"install"`
	Uninstall []string `json:"uninstall,omitempty"`
}

// CRD policies: what a run does with the cluster's Gateway API CRDs (install/gatewayapi.Policy).
const (
	// CRDsInstall server-side applies the embedded CRDs of the pinned bundle (the default).
	CRDsInstall = "install"
	// CRDsSkip leaves the cluster's CRDs alone and checks the ones the suites need exist and
	// are Established.
	CRDsSkip = "skip"
	// CRDsRequire leaves them alone and requires every Gateway API CRD to carry Version and
	// Channel in its bundle annotations; conformance.allowCrdsMismatch turns a mismatch into a
	// warning.
	CRDsRequire = "require"
)

// CRDs is what a run does with the cluster's Gateway API CRDs. gatecheck never removes CRDs.
type CRDs struct {
	// Policy is install (default), skip or require; --crds overrides it.
	Policy string `json:"policy,omitempty"`
	// Version is the bundle version require wants (default the pinned bundle, v1.6.3).
	Version string `json:"version,omitempty"`
	// Channel is the channel install installs or require wants (standard or experimental);
	// default --channel, else standard.
	Channel string `json:"channel,omitempty"`
}

var bundleVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

func (c CRDs) validate() []error {
	var errs []error
	switch c.Policy {
	case "", CRDsInstall, CRDsSkip, CRDsRequire:
	default:
		errs = append(errs, fmt.Errorf("crds.policy: unknown %q (want install, skip or require)", c.Policy))
	}
	switch c.Channel {
	case "", "standard", "experimental":
	default:
		errs = append(errs, fmt.Errorf("crds.channel: unknown %q (want standard or experimental)", c.Channel))
	}
	if c.Version != "" {
		switch {
		case !bundleVersion.MatchString(c.Version):
			errs = append(errs, fmt.Errorf("crds.version: %q is not a bundle version like v1.6.3", c.Version))
		case c.Policy != CRDsRequire:
			errs = append(errs, fmt.Errorf("crds.version: only policy require reads it (install installs the pinned bundle, skip checks no version); got policy %q", cmp.Or(c.Policy, CRDsInstall)))
		}
	}
	return errs
}

// Images the run must build or load before installing.
type Images struct {
	// Build names images gatecheck builds from this repository (see `gatecheck images list`).
	Build []string `json:"build,omitempty"`
	// Archives are docker-archive/OCI tarballs to load as they are.
	Archives []string `json:"archives,omitempty"`
}

// Conformance is what the implementation claims.
type Conformance struct {
	// Profiles are upstream conformance profiles, e.g. GATEWAY-HTTP.
	Profiles []string `json:"profiles,omitempty"`
	// SupportedFeatures, when empty, are read from the GatewayClass status by the suite.
	SupportedFeatures []string `json:"supportedFeatures,omitempty"`
	ExemptFeatures    []string `json:"exemptFeatures,omitempty"`
	// SkipTests are upstream test names not to run (--skip-tests): the tests a profile cannot
	// serve at all.
	SkipTests []string `json:"skipTests,omitempty"`
	// KnownFailures are upstream tests the implementation is known to fail, each with why. They
	// still run; the report shows a documented failure as known, and it does not fail the gate.
	KnownFailures []KnownFailure `json:"knownFailures,omitempty"`
	// Report identifies the implementation in the upstream ConformanceReport.
	Report ReportIdentity `json:"report"`
	// SuiteOptions are the upstream suite's other options (suiteoptions.go).
	SuiteOptions
}

// KnownFailure is an upstream test the implementation fails, and why.
type KnownFailure struct {
	Test   string `json:"test"`
	Reason string `json:"reason"`
}

// ReportIdentity is the implementation block of an upstream ConformanceReport.
type ReportIdentity struct {
	Organization string   `json:"organization"`
	Project      string   `json:"project"`
	URL          string   `json:"url"`
	Version      string   `json:"version"`
	Contact      []string `json:"contact"`
}

// ReachMode is how the runner dials a Gateway.
type ReachMode string

const (
	// ReachStatusAddress dials Gateway status.addresses[0] (ClusterIP on the host cluster,
	// LoadBalancer IPs elsewhere).
	ReachStatusAddress ReachMode = "status-address"
	// ReachNodePort dials <node InternalIP>:<nodePort> of the Gateway's data-plane Service,
	// found by the GEP-1762 label gateway.networking.k8s.io/gateway-name (a NodePort or
	// LoadBalancer Service; kind on Linux or any cluster whose nodes the runner reaches).
	ReachNodePort ReachMode = "nodeport"
	// ReachPortForward port-forwards a loopback port per listener, through the API server, to
	// a ready Pod behind that same Service, following the Pod when it is replaced (any
	// cluster the kubeconfig reaches).
	ReachPortForward ReachMode = "port-forward"
)

// Reach says how the runner reaches a Gateway.
type Reach struct {
	Mode ReachMode `json:"mode,omitempty"`
	// Service finds a Gateway's data-plane Service for nodeport and port-forward.
	Service ReachService `json:"service,omitempty"`
}

// ReachService finds the data-plane Service of a Gateway. In both fields {name} and
// {namespace} stand for the Gateway's. Implementations differ: the reference one, Istio and
// others label the Service in the Gateway's namespace with the GEP-1762 label (the defaults);
// Envoy Gateway runs its proxies in its own namespace, e.g.
//
//	namespace: envoy-gateway-system
//	selector: gateway.envoyproxy.io/owning-gateway-name={name},gateway.envoyproxy.io/owning-gateway-namespace={namespace}
type ReachService struct {
	// Namespace to search; default {namespace}.
	Namespace string `json:"namespace,omitempty"`
	// Selector is a label selector; default gateway.networking.k8s.io/gateway-name={name}.
	Selector string `json:"selector,omitempty"`
}

// DefaultServiceSelector is the GEP-1762 label selector of a Gateway's data-plane Service.
const DefaultServiceSelector = "gateway.networking.k8s.io/gateway-name={name}"

// Resolve returns the namespace and label selector of Gateway namespace/name's data-plane
// Service.
func (s ReachService) Resolve(namespace, name string) (string, labels.Selector, error) {
	r := strings.NewReplacer("{name}", name, "{namespace}", namespace)
	ns := r.Replace(cmp.Or(s.Namespace, "{namespace}"))
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", nil, fmt.Errorf("reach.service.namespace %q gives %q for Gateway %s/%s: %s", s.Namespace, ns, namespace, name, strings.Join(errs, "; "))
	}
	raw := r.Replace(cmp.Or(s.Selector, DefaultServiceSelector))
	sel, err := labels.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("reach.service.selector %q gives %q for Gateway %s/%s: %w", cmp.Or(s.Selector, DefaultServiceSelector), raw, namespace, name, err)
	}
	if sel.Empty() {
		return "", nil, fmt.Errorf("reach.service.selector %q selects every Service; name the Gateway's, e.g. %s", s.Selector, DefaultServiceSelector)
	}
	return ns, sel, nil
}

// Readiness lists what must be ready before tests start.
type Readiness struct {
	Deployments []NamespacedName `json:"deployments,omitempty"`
	// Timeout bounds each readiness wait; default 3m.
	Timeout Duration `json:"timeout,omitempty"`
}

// NamespacedName names a namespaced object.
type NamespacedName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Duration reads "90s", "2m".
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. \"90s\" or \"2m\"", s)
	}
	d.Duration = v
	return nil
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// knownProfiles are the upstream conformance profile names.
var knownProfiles = map[string]bool{
	"GATEWAY-HTTP": true, "GATEWAY-GRPC": true, "GATEWAY-TLS": true, "GATEWAY-TCP": true, "GATEWAY-UDP": true,
	"MESH-HTTP": true, "MESH-GRPC": true,
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Load reads and validates a profile file. Unknown fields are errors, so a typo is caught.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("implementation profile: %w", err)
	}
	var p Profile
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("implementation profile %s: %w", path, err)
	}
	p.Dir = filepath.Dir(path)
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("implementation profile %s: %w", path, err)
	}
	return &p, nil
}

// Find resolves a profile by name (impls/<name>/profile.yaml under root) or by path.
func Find(root, nameOrPath string) (*Profile, error) {
	if strings.ContainsAny(nameOrPath, "/.") {
		return Load(nameOrPath)
	}
	path := filepath.Join(root, "impls", nameOrPath, "profile.yaml")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("implementation %q: no profile at %s (available: %s)", nameOrPath, path, strings.Join(List(root), ", "))
	}
	return Load(path)
}

// List names the profiles under root/impls.
func List(root string) []string {
	m, _ := filepath.Glob(filepath.Join(root, "impls", "*", "profile.yaml"))
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(filepath.Dir(p)))
	}
	sort.Strings(out)
	return out
}

// Validate reports every problem, each naming its field.
func (p *Profile) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.APIVersion != APIVersion {
		add("apiVersion: got %q; want %q", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		add("kind: got %q; want %q", p.Kind, Kind)
	}
	if !dnsLabel.MatchString(p.Name) {
		add("name: %q must be a lower-case DNS label", p.Name)
	}
	if p.GatewayClass.Name == "" {
		add("gatewayClass.name: required")
	}
	if p.GatewayClass.ControllerName == "" || !strings.Contains(p.GatewayClass.ControllerName, "/") {
		add("gatewayClass.controllerName: %q must be a domain-prefixed path like example.com/gateway", p.GatewayClass.ControllerName)
	}
	switch p.Install.Kind {
	case InstallManifests:
		if len(p.Install.Manifests) == 0 {
			add("install.manifests: at least one file or glob is required for kind manifests")
		}
	case InstallHelm:
		if h := p.Install.Helm; h == nil {
			add("install.helm: required for kind helm")
		} else {
			errs = append(errs, h.validate(p.Dir)...) // helm.go
			errs = append(errs, h.validateImages(p.Images.Build)...)
		}
	case InstallScript:
		if p.Install.Script == nil || len(p.Install.Script.Install) == 0 {
			add("install.script.install: a command is required for kind script")
		}
	case InstallNone:
		if len(p.Install.Manifests) > 0 || p.Install.Helm != nil || p.Install.Script != nil {
			add("install: kind none installs nothing: remove install.manifests, install.helm and install.script (or choose the kind that uses them)")
		}
	case "":
		add("install.kind: required (manifests, helm, script or none)")
	default:
		add("install.kind: unknown %q (want manifests, helm, script or none)", p.Install.Kind)
	}
	// A block another kind would read is a mistake, not a choice (none says so above).
	if k := p.Install.Kind; k == InstallManifests || k == InstallHelm || k == InstallScript {
		for _, b := range []struct {
			kind InstallKind
			set  bool
		}{{InstallManifests, len(p.Install.Manifests) > 0}, {InstallHelm, p.Install.Helm != nil}, {InstallScript, p.Install.Script != nil}} {
			if b.set && b.kind != k {
				add("install.%s: only kind %s reads it, and install.kind is %s: remove one", b.kind, b.kind, k)
			}
		}
	}
	for i, pr := range p.Conformance.Profiles {
		if !knownProfiles[pr] {
			add("conformance.profiles[%d]: unknown profile %q", i, pr)
		}
	}
	errs = append(errs, p.Conformance.validateSuiteOptions(p.Dir)...)
	errs = append(errs, p.CRDs.validate()...)
	seen := map[string]bool{}
	for i, k := range p.Conformance.KnownFailures {
		switch {
		case !testName.MatchString(k.Test):
			add("conformance.knownFailures[%d].test: %q is not an upstream test name (like HTTPRouteWeight)", i, k.Test)
		case seen[k.Test]:
			add("conformance.knownFailures[%d].test: %s is listed twice", i, k.Test)
		case slices.Contains(p.Conformance.SkipTests, k.Test):
			add("conformance.knownFailures[%d].test: %s is also in conformance.skipTests; a skipped test cannot fail, keep one", i, k.Test)
		}
		seen[k.Test] = true
		if strings.TrimSpace(k.Reason) == "" {
			add("conformance.knownFailures[%d].reason: required: say why %s fails (the report shows it)", i, k.Test)
		}
	}
	r := p.Conformance.Report
	if r.Organization == "" || r.Project == "" || r.URL == "" || r.Version == "" || len(r.Contact) == 0 {
		add("conformance.report: organization, project, url, version and contact are all required (the upstream ConformanceReport needs them)")
	}
	switch p.Reach.Mode {
	case "", ReachStatusAddress, ReachNodePort, ReachPortForward:
	default:
		add("reach.mode: unknown %q (want status-address, nodeport or port-forward)", p.Reach.Mode)
	}
	// A sample Gateway shows malformed selectors and namespaces before any cluster work.
	if _, _, err := p.Reach.Service.Resolve("gateway-ns", "gateway"); err != nil {
		add("%v", err)
	}
	for i, d := range p.Readiness.Deployments {
		if d.Namespace == "" || d.Name == "" {
			add("readiness.deployments[%d]: namespace and name are required", i)
		}
	}
	return errors.Join(errs...)
}

// ManifestFiles expands install.manifests globs relative to the profile directory, in order.
// A pattern that matches nothing is an error naming it.
func (p *Profile) ManifestFiles() ([]string, error) {
	var out []string
	for i, pat := range p.Install.Manifests {
		full := pat
		if !filepath.IsAbs(full) {
			full = filepath.Join(p.Dir, pat)
		}
		m, err := filepath.Glob(full)
		if err != nil {
			return nil, fmt.Errorf("install.manifests[%d] %q: %w", i, pat, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("install.manifests[%d] %q: matches no file (looked in %s)", i, pat, full)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}
