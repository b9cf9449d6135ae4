package gatewayapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/internal/version"
	"github.com/gatecheck/gatecheck/internal/wait"
)

// Policy says what a run does with the cluster's Gateway API CRDs.
type Policy string

const (
	// PolicyInstall server-side applies the embedded CRDs of the pinned bundle (the default);
	// a cluster with another bundle is refused.
	PolicyInstall Policy = "install"
	// PolicySkip leaves the cluster's CRDs alone and only checks that the ones the suites need
	// exist and are Established (a cluster whose platform team owns the CRDs).
	PolicySkip Policy = "skip"
	// PolicyRequire leaves them alone too, and requires every installed Gateway API CRD to carry
	// the wanted bundle version and channel in its annotations.
	PolicyRequire Policy = "require"
)

// Policies are the valid policies, for messages.
var Policies = []Policy{PolicyInstall, PolicySkip, PolicyRequire}

// ParsePolicy checks a policy name; "" is PolicyInstall.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(strings.TrimSpace(s)); p {
	case "":
		return PolicyInstall, nil
	case PolicyInstall, PolicySkip, PolicyRequire:
		return p, nil
	}
	return "", fmt.Errorf("unknown CRD policy %q (want install, skip or require)", s)
}

// Annotations the bundle's CRDs carry (and the upstream suite reads).
const (
	BundleVersionAnnotation = bundleVersionAnnotation
	ChannelAnnotation       = channelAnnotation
)

// Want is what a run asks of the cluster's Gateway API CRDs.
type Want struct {
	Policy Policy
	// Channel is the channel to install (install) or require (require); default standard.
	Channel string
	// Version is the bundle version require wants; default the pinned version. install
	// always installs the pinned version.
	Version string
	// Need are the CRDs (by name, e.g. httproutes.gateway.networking.k8s.io) the selected
	// suites use: skip and require check they exist and are Established.
	Need []string
	// AllowMismatch is the upstream suite's --allow-crds-mismatch: require reports a version or
	// channel mismatch and goes on instead of refusing it.
	AllowMismatch bool
	// MismatchField names where AllowMismatch is set, for messages
	// (default conformance.allowCrdsMismatch).
	MismatchField string
	// Conformance says the upstream suite runs: it refuses CRDs of another bundle than its own
	// unless AllowMismatch, so skip refuses them at once rather than minutes later.
	Conformance bool
}

// Found is what Ensure found (skip, require) or installed (install).
type Found struct {
	// Version and Channel are the cluster's Gateway API bundle ("" when it has none).
	Version, Channel string
	// Summary is a one-line account for the run's output.
	Summary string
}

func (w Want) channel() string {
	if w.Channel == "" {
		return "standard"
	}
	return w.Channel
}

func (w Want) version() string {
	if w.Version == "" {
		return version.GatewayAPIVersion
	}
	return w.Version
}

// Ensure applies the policy: install installs (Install), skip and require check the cluster's
// CRDs, waiting up to a minute (with progress) for needed CRDs that exist but are not yet
// Established. It never deletes a CRD.
func Ensure(ctx context.Context, cfg *rest.Config, w Want, out io.Writer) (Found, error) {
	if out == nil {
		out = io.Discard
	}
	switch w.Policy {
	case "", PolicyInstall:
		if w.Version != "" && w.Version != version.GatewayAPIVersion {
			return Found{}, fmt.Errorf("crds.version %s: policy install installs the embedded %s only; use policy require (or skip) for CRDs installed beforehand", w.Version, version.GatewayAPIVersion)
		}
		if err := Install(ctx, cfg, w.channel(), out); err != nil {
			return Found{}, err
		}
		return Found{Version: version.GatewayAPIVersion, Channel: w.channel(),
			Summary: fmt.Sprintf("installed Gateway API %s CRDs (%s channel)", version.GatewayAPIVersion, w.channel())}, nil
	case PolicySkip, PolicyRequire:
	default:
		return Found{}, fmt.Errorf("unknown CRD policy %q (want install, skip or require)", w.Policy)
	}
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return Found{}, fmt.Errorf("apiextensions client: %w", err)
	}
	fmt.Fprintf(out, "  CRD policy %s: leaving the cluster's Gateway API CRDs as they are; checking %d the suites need\n", w.Policy, len(w.Need))
	var res Checked
	_, err = wait.For(ctx, fmt.Sprintf("%d Gateway API CRDs the suites need to be Established", len(w.Need)), time.Minute, wait.Options{Out: out},
		func(ctx context.Context) (bool, string, error) {
			list, err := cs.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, "", fmt.Errorf("list CRDs: %w", err)
			}
			res = Check(list.Items, w)
			if len(res.Missing) > 0 || len(res.Mismatches) > 0 && !w.AllowMismatch {
				// Nothing to wait for: a missing CRD or a wrong bundle does not fix itself.
				return true, "", nil
			}
			return len(res.NotEstablished) == 0, fmt.Sprintf("not yet Established: %s", strings.Join(res.NotEstablished, ", ")), nil
		})
	var te *wait.TimeoutError
	if err != nil && !errors.As(err, &te) {
		return Found{}, err
	}
	if e := res.Err(w); e != nil {
		return Found{}, e
	}
	for _, m := range res.Mismatches {
		fmt.Fprintf(out, "  warning: %s (allowed by %s; the upstream suite's results are then no conformance claim)\n", m, w.mismatchField())
	}
	found := "no Gateway API CRDs"
	if res.Version != "" {
		found = fmt.Sprintf("Gateway API %s (%s channel)", res.Version, res.Channel)
	}
	return Found{Version: res.Version, Channel: res.Channel,
		Summary: fmt.Sprintf("CRDs left as found: %s; the %d needed are Established", found, len(w.Need))}, nil
}

func (w Want) mismatchField() string {
	if w.MismatchField == "" {
		return "conformance.allowCrdsMismatch"
	}
	return w.MismatchField
}

// Checked is what Check found.
type Checked struct {
	// Version and Channel are the annotations of the first Gateway API CRD found.
	Version, Channel string
	// Missing are needed CRDs that do not exist; NotEstablished exist but are not Established.
	Missing, NotEstablished []string
	// Mismatches (require only) name a CRD, an annotation, the value found and the one wanted.
	Mismatches []string
}

// Err turns what Check found into the error w's policy makes of it, naming every CRD.
func (c Checked) Err(w Want) error {
	var errs []error
	if len(c.Missing) > 0 {
		errs = append(errs, fmt.Errorf("CRD policy %s: the suites need Gateway API CRDs the cluster does not have: %s (install them, e.g. the %s %s bundle, or use CRD policy install)",
			w.Policy, strings.Join(c.Missing, ", "), w.version(), w.channel()))
	}
	if len(c.NotEstablished) > 0 {
		errs = append(errs, fmt.Errorf("CRD policy %s: CRDs not Established after a minute: %s (kubectl get crd %s -o yaml shows why)",
			w.Policy, strings.Join(c.NotEstablished, ", "), c.NotEstablished[0]))
	}
	if w.Policy == PolicySkip && w.Conformance && !w.AllowMismatch && c.Version != "" &&
		(c.Version != version.GatewayAPIVersion || c.Channel != w.channel()) {
		errs = append(errs, fmt.Errorf("CRD policy skip: the cluster's Gateway API CRDs are %s (%s channel, annotations %s and %s) and the upstream suite %s refuses any bundle but its own (%s channel): set %s, or leave conformance out of --suites",
			c.Version, c.Channel, bundleVersionAnnotation, channelAnnotation, version.GatewayAPIVersion, w.channel(), w.mismatchField()))
	}
	if len(c.Mismatches) > 0 && !w.AllowMismatch {
		errs = append(errs, fmt.Errorf("CRD policy require: %s; install the wanted bundle, change crds.version/crds.channel, or set %s to run anyway (results are then no conformance claim)",
			strings.Join(c.Mismatches, "; "), w.mismatchField()))
	}
	return errors.Join(errs...)
}

// Check compares a cluster's CRDs with w: the needed ones must exist and be Established; under
// require, every Gateway API CRD (gateway.networking.k8s.io and gateway.networking.x-k8s.io)
// must carry w's bundle version and channel.
func Check(items []apiextensionsv1.CustomResourceDefinition, w Want) Checked {
	var c Checked
	byName := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for i := range items {
		crd := &items[i]
		byName[crd.Name] = crd
		if !isGatewayAPI(crd.Spec.Group) {
			continue
		}
		v, ch := crd.Annotations[bundleVersionAnnotation], crd.Annotations[channelAnnotation]
		if c.Version == "" && crd.Spec.Group == group {
			c.Version, c.Channel = v, ch
		}
		if w.Policy != PolicyRequire {
			continue
		}
		if v != w.version() {
			c.Mismatches = append(c.Mismatches, fmt.Sprintf("CRD %s: annotation %s is %q; want %q", crd.Name, bundleVersionAnnotation, v, w.version()))
		}
		if ch != w.channel() {
			c.Mismatches = append(c.Mismatches, fmt.Sprintf("CRD %s: annotation %s is %q; want %q", crd.Name, channelAnnotation, ch, w.channel()))
		}
	}
	for _, n := range w.Need {
		crd, ok := byName[n]
		switch {
		case !ok:
			c.Missing = append(c.Missing, n)
		case !established(crd):
			c.NotEstablished = append(c.NotEstablished, n)
		}
	}
	slices.Sort(c.Mismatches)
	return c
}

func isGatewayAPI(g string) bool { return g == group || g == "gateway.networking.x-k8s.io" }

// CRDName is the CRD of a Gateway API resource (plural), e.g. httproutes ->
// httproutes.gateway.networking.k8s.io.
func CRDName(resource string) string { return resource + "." + group }
