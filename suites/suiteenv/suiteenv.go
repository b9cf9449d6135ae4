// Package suiteenv is the contract between `gatecheck run` and the Ginkgo suites: what the
// runner passes in the environment, read in one place so every suite agrees.
package suiteenv

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/impls"
)

// Environment variables the runner sets for every suite binary.
const (
	EnvKubeconfig   = "KUBECONFIG"
	EnvGatewayClass = "GATECHECK_GATEWAY_CLASS" // GatewayClass under test
	EnvImpl         = "GATECHECK_IMPL"          // implementation profile name
	EnvReachMode    = "GATECHECK_REACH_MODE"    // status-address | nodeport | port-forward
	// The profile's reach.service: where a Gateway's data-plane Service is, with {name} and
	// {namespace} for the Gateway's (empty: the defaults of impls.ReachService).
	EnvReachServiceNamespace = "GATECHECK_REACH_SERVICE_NAMESPACE"
	EnvReachServiceSelector  = "GATECHECK_REACH_SERVICE_SELECTOR"
	EnvArtifacts             = "GATECHECK_ARTIFACTS"     // directory for logs and extra files
	EnvEchoImage             = "GATECHECK_ECHO_IMAGE"    // echo-backend image reference
	EnvFeatures              = "GATECHECK_FEATURES"      // comma-separated features claimed; empty: read GatewayClass status
	EnvAlpha                 = "GATECHECK_ALPHA"         // false-failure rate per verdict (gate override)
	EnvScale                 = "GATECHECK_TRAFFIC_SCALE" // multiplies request caps (e.g. 0.5 for a quick run)
	EnvTimeout               = "GATECHECK_SPEC_TIMEOUT"  // per-spec timeout, Go duration
	EnvTolerancePts          = "GATECHECK_TOLERANCE_PTS" // weight tolerance in percentage points
	EnvSuite                 = "GATECHECK_SUITE"         // the suite suites/all runs (canary, grpc, ...)

	// EnvImagesPulled is "true" when the runner put the images on every node itself: pushed
	// to a registry (--registry) and pulled by every node, or loaded into every node. The
	// suites then skip their check of the nodes' status.images, which the kubelet caps at 5
	// names per image (a loaded or pulled name can be missing from it).
	EnvImagesPulled = "GATECHECK_IMAGES_PULLED"
)

// QuietLabel is the Ginkgo label of the specs whose verdicts need the node to themselves: other
// suites' load or Pods would make a correct implementation (or kubelet) fail them. mirror's
// isolation bound and udp's flow expiry judge time; udp's loss counts dropped datagrams (19% of
// 2,000 lost by the reference with two suites running alongside, once in five runs; none in 26
// runs alone); the sidecar suite's resource accounting compares the scheduler's decision with
// the node's unrequested CPU, which other suites' Pods change in between (a run where the
// upstream suite's Pods went away during it: a Pod that must not fit was bound). `gatecheck
// run` runs a suite's other specs alongside the upstream suite and its quiet specs afterwards,
// one suite at a time. The suites with specs with this label are listed in suites/all (its test
// checks the list against the labels).
const QuietLabel = "quiet"

// Defaults used when the runner (or a person running `go test` by hand) sets nothing.
const (
	DefaultGatewayClass = "gatecheck-reference"
	DefaultEchoImage    = "gatecheck.dev/echo-backend:dev"
	DefaultAlpha        = 1e-4
	DefaultTolerancePts = 1.5
)

// Config is the parsed environment.
type Config struct {
	Kubeconfig   string
	GatewayClass string
	Impl         string
	ReachMode    string
	// ReachServiceNamespace and ReachServiceSelector are the profile's reach.service.
	ReachServiceNamespace, ReachServiceSelector string
	Artifacts                                   string
	EchoImage                                   string
	Features                                    []string
	Alpha                                       float64
	Scale                                       float64
	SpecTimeout                                 time.Duration
	TolerancePts                                float64

	// ImagesPulled: the nodes pulled the images from a registry (EnvImagesPulled).
	ImagesPulled bool
}

// Load reads the environment. A malformed value is an error naming the variable.
func Load() (Config, error) { return load(os.Getenv) }

func load(get func(string) string) (Config, error) {
	c := Config{
		Kubeconfig:   get(EnvKubeconfig),
		GatewayClass: or(get(EnvGatewayClass), DefaultGatewayClass),
		Impl:         or(get(EnvImpl), "reference"),
		ReachMode:    or(get(EnvReachMode), string(impls.ReachStatusAddress)),

		ReachServiceNamespace: get(EnvReachServiceNamespace),
		ReachServiceSelector:  get(EnvReachServiceSelector),
		Artifacts:             or(get(EnvArtifacts), os.TempDir()),
		EchoImage:             or(get(EnvEchoImage), DefaultEchoImage),
		Alpha:                 DefaultAlpha,
		Scale:                 1,
		SpecTimeout:           5 * time.Minute,
		TolerancePts:          DefaultTolerancePts,
	}
	var errs []error
	if f := get(EnvFeatures); f != "" {
		for _, s := range strings.Split(f, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.Features = append(c.Features, s)
			}
		}
	}
	float := func(name string, dst *float64, lo, hi float64) {
		v := get(name)
		if v == "" {
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= lo || f > hi {
			errs = append(errs, fmt.Errorf("%s=%q: want a number in (%g, %g]", name, v, lo, hi))
			return
		}
		*dst = f
	}
	switch v := get(EnvImagesPulled); v {
	case "", "false":
	case "true":
		c.ImagesPulled = true
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want true or false", EnvImagesPulled, v))
	}
	float(EnvAlpha, &c.Alpha, 0, 0.5)
	float(EnvScale, &c.Scale, 0, 100)
	float(EnvTolerancePts, &c.TolerancePts, 0, 50)
	if v := get(EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive Go duration like 5m", EnvTimeout, v))
		} else {
			c.SpecTimeout = d
		}
	}
	switch impls.ReachMode(c.ReachMode) {
	case impls.ReachStatusAddress, impls.ReachNodePort, impls.ReachPortForward:
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want status-address, nodeport or port-forward", EnvReachMode, c.ReachMode))
	}
	return c, errors.Join(errs...)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Environ renders c as KEY=VALUE pairs for a suite process.
func (c Config) Environ() []string {
	return []string{
		EnvKubeconfig + "=" + c.Kubeconfig,
		EnvGatewayClass + "=" + c.GatewayClass,
		EnvImpl + "=" + c.Impl,
		EnvReachMode + "=" + c.ReachMode,
		EnvReachServiceNamespace + "=" + c.ReachServiceNamespace,
		EnvReachServiceSelector + "=" + c.ReachServiceSelector,
		EnvArtifacts + "=" + c.Artifacts,
		EnvEchoImage + "=" + c.EchoImage,
		EnvImagesPulled + "=" + strconv.FormatBool(c.ImagesPulled),
		EnvFeatures + "=" + strings.Join(c.Features, ","),
		EnvAlpha + "=" + strconv.FormatFloat(c.Alpha, 'g', -1, 64),
		EnvScale + "=" + strconv.FormatFloat(c.Scale, 'g', -1, 64),
		EnvTimeout + "=" + c.SpecTimeout.String(),
		EnvTolerancePts + "=" + strconv.FormatFloat(c.TolerancePts, 'g', -1, 64),
	}
}
