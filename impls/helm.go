package impls

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Helm installs a chart with the helm CLI (install.kind helm): the helm on PATH (v3 or v4),
// else, or when Bundled is set, helm v4 built by gatecheck from the Go module proxy.
//
// gatecheck installs a release of its own and removes exactly that: it refuses to install
// when a release of that name already exists in the namespace (in any state, also a history
// kept by `helm uninstall --keep-history`), creates the namespace only when it is missing and
// then removes it after `helm uninstall --wait`.
type Helm struct {
	// Release is the release name (a DNS-1123 subdomain of at most 53 characters).
	Release string `json:"release"`
	// Namespace is the release namespace.
	Namespace string `json:"namespace"`
	// Chart is one of: a local chart directory or .tgz archive, relative to the profile's
	// directory; the chart's name in the repository Repo; or an OCI reference
	// oci://registry/path/chart.
	Chart string `json:"chart"`
	// Repo is the URL (http or https) of the chart repository Chart is in (helm --repo; no
	// `helm repo add` needed).
	Repo string `json:"repo,omitempty"`
	// PlainHTTP speaks plain HTTP to the OCI registry of an oci:// chart (helm --plain-http).
	// Default: on for a loopback registry (127.0.0.1, localhost, ::1), as --registry does;
	// helm itself speaks HTTPS to every registry unless told.
	PlainHTTP *bool `json:"plainHTTP,omitempty"`
	// Version of a repository or OCI chart: a version or a constraint such as "^1.2" (helm
	// --version). A local chart is used as it is.
	Version string `json:"version,omitempty"`
	// Values are values files, relative to the profile's directory, applied in order (helm
	// --values; later files win).
	Values []string `json:"values,omitempty"`
	// Set are values given one by one, applied in order after every values file (helm --set,
	// one flag per entry; later entries win). Names and values use helm's --set syntax:
	// a.b[0].c names a nested value, {x,y} is a list, \, is a comma inside a value; numbers and
	// true/false become numbers and booleans (put the value in a values file to keep it a string).
	Set []HelmSet `json:"set,omitempty"`
	// Images point chart values at images gatecheck builds (images.build), so the chart runs
	// the image the run built, or with --registry its pushed reference, whatever its defaults
	// say. Applied after every values file and set entry.
	Images []HelmImage `json:"images,omitempty"`
	// SkipCRDs skips the chart's crds/ directory (helm --skip-crds): gatecheck installs the
	// Gateway API CRDs itself, and a chart that bundles its own would collide with them.
	SkipCRDs bool `json:"skipCRDs,omitempty"`
	// Timeout bounds the install and the uninstall each (helm --timeout); default 5m.
	Timeout Duration `json:"timeout,omitempty"`
	// Wait makes helm wait until the release's resources are ready (install) or gone
	// (uninstall) (helm --wait); default true.
	Wait *bool `json:"wait,omitempty"`
	// Bundled uses the helm gatecheck builds (HelmVersion) even when one is on PATH.
	Bundled bool `json:"bundled,omitempty"`
}

// HelmImage names the chart values that carry one image gatecheck builds: Value takes the whole
// reference (registry/repository:tag), or, for a chart that splits it, Repository takes the
// reference without its tag and Tag the tag. Each is a helm --set name.
type HelmImage struct {
	// Image is a name from images.build.
	Image      string `json:"image"`
	Value      string `json:"value,omitempty"`
	Repository string `json:"repository,omitempty"`
	Tag        string `json:"tag,omitempty"`
}

// ImageSets are the --set entries of Images, in order: each value set to ref(image), the
// reference of a built image as the cluster's nodes get it (pushed with --registry, else as
// built). A reference without a tag, or with a digest, cannot fill a repository and tag.
func (h *Helm) ImageSets(ref func(image string) (string, error)) ([]HelmSet, error) {
	var sets []HelmSet
	for i, m := range h.Images {
		r, err := ref(m.Image)
		if err != nil {
			return nil, fmt.Errorf("install.helm.images[%d].image %s: %w", i, m.Image, err)
		}
		if m.Value != "" {
			sets = append(sets, HelmSet{Name: m.Value, Value: HelmValue(r)})
			continue
		}
		repo, tag, ok := splitTag(r)
		if !ok {
			return nil, fmt.Errorf("install.helm.images[%d]: image %s is %s, which has no tag to set %s from", i, m.Image, r, m.Tag)
		}
		sets = append(sets, HelmSet{Name: m.Repository, Value: HelmValue(repo)}, HelmSet{Name: m.Tag, Value: HelmValue(tag)})
	}
	return sets, nil
}

// splitTag splits repo:tag; the colon of a registry's port is not a tag's.
func splitTag(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") || strings.Contains(ref, "@") || i == len(ref)-1 {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// validateImages checks install.helm.images against images.build and the set entries.
func (h *Helm) validateImages(build []string) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	used := map[string]string{}
	for i, s := range h.Set {
		used[s.Name] = fmt.Sprintf("install.helm.set[%d]", i)
	}
	for i, m := range h.Images {
		f := fmt.Sprintf("install.helm.images[%d]", i)
		switch {
		case m.Image == "":
			add("%s.image: required (a name from images.build)", f)
		case !slices.Contains(build, m.Image):
			add("%s.image: %q is not in images.build %q: only images gatecheck builds have a reference it knows", f, m.Image, build)
		}
		names := map[string]string{"value": m.Value, "repository": m.Repository, "tag": m.Tag}
		switch {
		case m.Value != "" && (m.Repository != "" || m.Tag != ""):
			add("%s: value, or repository and tag, not both", f)
		case m.Value == "" && (m.Repository == "") != (m.Tag == ""):
			add("%s: repository and tag go together (a chart that splits an image needs both)", f)
		case m.Value == "" && m.Repository == "":
			add("%s: value (the whole reference) or repository and tag: which chart values carry the image", f)
		}
		for _, k := range []string{"value", "repository", "tag"} {
			n := names[k]
			if n == "" {
				continue
			}
			if err := checkSetName(n); err != nil {
				add("%s.%s: %v", f, k, err)
			} else if prev, ok := used[n]; ok {
				add("%s.%s: %s is also set by %s: one place per value", f, k, n, prev)
			}
			used[n] = f + "." + k
		}
	}
	return errs
}

// HelmSet is one value set on the command line: --set Name=Value.
type HelmSet struct {
	Name  string    `json:"name"`
	Value HelmValue `json:"value"`
}

// HelmValue is a --set value as written in the profile: a string, or a number or boolean
// kept as its text.
type HelmValue string

func (v *HelmValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = HelmValue(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*v = HelmValue(n.String())
		return nil
	}
	var t bool
	if err := json.Unmarshal(b, &t); err == nil {
		*v = HelmValue(fmt.Sprint(t))
		return nil
	}
	return fmt.Errorf("install.helm.set: value %s: want a string, number or boolean (a structure goes in a values file)", b)
}

// DefaultHelmTimeout bounds a helm install or uninstall when the profile does not.
const DefaultHelmTimeout = 5 * time.Minute

// ChartSource says where a chart comes from.
type ChartSource string

const (
	ChartLocal ChartSource = "local"
	ChartRepo  ChartSource = "repo"
	ChartOCI   ChartSource = "oci"
)

// Source says whether Chart is local, in a repository or an OCI reference.
func (h *Helm) Source() ChartSource {
	switch {
	case strings.HasPrefix(h.Chart, "oci://"):
		return ChartOCI
	case h.Repo != "":
		return ChartRepo
	}
	return ChartLocal
}

// PlainHTTPOrDefault is PlainHTTP for an oci:// chart, default true when its registry is on
// loopback; false for other charts.
func (h *Helm) PlainHTTPOrDefault() bool {
	if h.Source() != ChartOCI {
		return false
	}
	if h.PlainHTTP != nil {
		return *h.PlainHTTP
	}
	u, err := url.Parse(h.Chart)
	if err != nil {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// WaitOrDefault is Wait, default true.
func (h *Helm) WaitOrDefault() bool { return h.Wait == nil || *h.Wait }

var (
	// helmReleaseName is helm's own rule (pkg/chart/v2/util/validate_name.go).
	helmReleaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	helmChartName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// validate reports every problem of install.helm, each naming its field; dir is the profile's
// directory.
func (h *Helm) validate(dir string) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case h.Release == "":
		add("install.helm.release: required")
	case len(h.Release) > 53 || !helmReleaseName.MatchString(h.Release):
		add("install.helm.release: %q must be lower-case letters, digits, '-' and '.', at most 53 characters (helm's rule)", h.Release)
	}
	if h.Namespace == "" {
		add("install.helm.namespace: required")
	} else if e := validation.IsDNS1123Label(h.Namespace); len(e) > 0 {
		add("install.helm.namespace: %q: %s", h.Namespace, strings.Join(e, "; "))
	}
	switch src := h.Source(); {
	case h.Chart == "":
		add("install.helm.chart: required (a local chart path, a chart name with install.helm.repo, or oci://...)")
	case src == ChartOCI:
		u, err := url.Parse(h.Chart)
		if err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" || u.RawQuery != "" || u.Fragment != "" {
			add("install.helm.chart: %q is not an OCI chart reference like oci://registry.example/charts/name", h.Chart)
		} else if strings.Contains(u.Path, ":") || strings.Contains(u.Path, "@") {
			add("install.helm.chart: %q: give the version in install.helm.version, not in the reference", h.Chart)
		}
		if h.Repo != "" {
			add("install.helm.repo: not with an oci:// chart (the reference names its registry)")
		}
	case src == ChartRepo:
		if u, err := url.Parse(h.Repo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("install.helm.repo: %q is not an http(s) chart repository URL", h.Repo)
		}
		if !helmChartName.MatchString(h.Chart) {
			add("install.helm.chart: %q: with install.helm.repo, chart is the chart's name in that repository (like gateway-helm)", h.Chart)
		}
	default:
		if strings.Contains(h.Chart, "://") {
			add("install.helm.chart: %q: only oci:// references name a chart by URL; for a chart repository set install.helm.repo to its URL and chart to the chart's name", h.Chart)
			break
		}
		path := resolve(dir, h.Chart)
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			add("install.helm.chart: local chart %s not found (relative to the profile's directory; a chart from a repository needs install.helm.repo, an OCI chart oci://...)", path)
		case fi.IsDir():
			if _, err := os.Stat(filepath.Join(path, "Chart.yaml")); err != nil {
				add("install.helm.chart: %s is a directory without Chart.yaml, not a chart", path)
			}
		case !strings.HasSuffix(path, ".tgz") && !strings.HasSuffix(path, ".tar.gz"):
			add("install.helm.chart: %s is a file but not a chart archive (.tgz)", path)
		}
		if h.Version != "" {
			add("install.helm.version: applies to repository and OCI charts; the local chart %s is used as it is", h.Chart)
		}
	}
	if h.PlainHTTP != nil && h.Source() != ChartOCI && h.Chart != "" {
		add("install.helm.plainHTTP: applies to oci:// charts only (a chart repository's URL says http or https)")
	}
	if h.Version != "" && h.Source() != ChartLocal {
		if _, err := semver.NewConstraint(h.Version); err != nil {
			add("install.helm.version: %q is neither a version nor a version constraint: %v", h.Version, err)
		}
	}
	for i, v := range h.Values {
		switch fi, err := os.Stat(resolve(dir, v)); {
		case v == "":
			add("install.helm.values[%d]: empty path", i)
		case strings.Contains(v, ","):
			// helm reads --values as a comma-separated list.
			add("install.helm.values[%d]: %q: helm splits --values at commas; rename the file", i, v)
		case err != nil:
			add("install.helm.values[%d]: %s not found (relative to the profile's directory)", i, resolve(dir, v))
		case fi.IsDir():
			add("install.helm.values[%d]: %s is a directory, not a values file", i, resolve(dir, v))
		}
	}
	for i, s := range h.Set {
		if err := checkSetName(s.Name); err != nil {
			add("install.helm.set[%d].name: %v", i, err)
		}
		if err := checkSetValue(string(s.Value)); err != nil {
			add("install.helm.set[%d].value: %v", i, err)
		}
	}
	if h.Timeout.Duration < 0 {
		add("install.helm.timeout: %s must be positive", h.Timeout.Duration)
	}
	return errs
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// checkSetName accepts a helm --set name: a.b, list[0].x, escaped\.dots; nothing that would
// make the flag two assignments or none.
func checkSetName(n string) error {
	switch {
	case n == "":
		return errors.New("required")
	case strings.ContainsAny(n, " \t\n="):
		return fmt.Errorf("%q: no spaces or '=' in a value name", n)
	case hasUnescaped(n, ','):
		return fmt.Errorf("%q: a comma would make helm read two assignments", n)
	case strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") || strings.Contains(n, ".."):
		return fmt.Errorf("%q: an empty path element", n)
	}
	return nil
}

// checkSetValue accepts a value helm --set reads as one value: a {list}, or text whose commas
// are escaped (\,).
func checkSetValue(v string) error {
	if strings.HasPrefix(v, "{") {
		if !strings.HasSuffix(v, "}") || strings.Count(v, "}") != 1 {
			return fmt.Errorf("%q: a list is {a,b} and ends at its first '}'", v)
		}
		return nil
	}
	if hasUnescaped(v, ',') {
		return fmt.Errorf("%q: helm --set would split it at the comma into two assignments; write \\, for a comma (or use a values file)", v)
	}
	return nil
}

// hasUnescaped reports whether s holds r not preceded by a backslash escape.
func hasUnescaped(s string, r rune) bool {
	esc := false
	for _, c := range s {
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == r:
			return true
		}
	}
	return false
}

// HelmTarget is the cluster a helm command acts on.
type HelmTarget struct {
	Kubeconfig string
	// Context is the kubeconfig context; "" is the kubeconfig's current one.
	Context string
}

func (t HelmTarget) args() []string {
	var a []string
	if t.Kubeconfig != "" {
		a = append(a, "--kubeconfig", t.Kubeconfig)
	}
	if t.Context != "" {
		a = append(a, "--kube-context", t.Context)
	}
	return a
}

// InstallArgs are the helm arguments that install the release (the namespace exists: gatecheck
// creates it when it is missing). `helm install`, never `upgrade --install`: helm itself
// refuses a name in use. dir is the profile's directory; local paths are made absolute.
func (h *Helm) InstallArgs(dir string, t HelmTarget) []string {
	chart := h.ChartArgs(dir)
	a := []string{"install", h.Release, chart[0], "--namespace", h.Namespace}
	a = append(a, t.args()...)
	a = append(a, chart[1:]...)
	for _, v := range h.Values {
		a = append(a, "--values", resolve(dir, v))
	}
	for _, s := range h.Set {
		a = append(a, "--set", s.Name+"="+string(s.Value))
	}
	if h.SkipCRDs {
		a = append(a, "--skip-crds")
	}
	if h.WaitOrDefault() {
		a = append(a, "--wait")
	}
	return append(a, "--timeout", h.Timeout.Or(DefaultHelmTimeout).String())
}

// ChartArgs name the chart as install passes it, for any helm command that takes a chart
// (install, template, pull, show): the chart first (a local path made absolute), then --repo,
// --version and --plain-http as the profile asks.
func (h *Helm) ChartArgs(dir string) []string {
	chart := h.Chart
	if h.Source() == ChartLocal {
		chart = resolve(dir, chart)
	}
	a := []string{chart}
	if h.Repo != "" {
		a = append(a, "--repo", h.Repo)
	}
	if h.Version != "" {
		a = append(a, "--version", h.Version)
	}
	if h.PlainHTTPOrDefault() {
		a = append(a, "--plain-http")
	}
	return a
}

// UninstallArgs are the helm arguments that remove the release gatecheck installed.
func (h *Helm) UninstallArgs(t HelmTarget) []string {
	a := append([]string{"uninstall", h.Release, "--namespace", h.Namespace}, t.args()...)
	if h.WaitOrDefault() {
		a = append(a, "--wait")
	}
	return append(a, "--timeout", h.Timeout.Or(DefaultHelmTimeout).String())
}

// ListArgs are the helm arguments that list, as JSON, every release named Release in the
// namespace, in any state (also a history kept by `helm uninstall --keep-history`).
func (h *Helm) ListArgs(t HelmTarget) []string {
	a := append([]string{"list", "--namespace", h.Namespace}, t.args()...)
	return append(a, "--filter", "^"+regexp.QuoteMeta(h.Release)+"$",
		"--deployed", "--failed", "--pending", "--superseded", "--uninstalled", "--uninstalling", "--output", "json")
}
