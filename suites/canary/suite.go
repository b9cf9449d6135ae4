// The canary suite checks weighted traffic splits through a Gateway with sequential share
// tests whose false-failure rate and power are stated in every verdict.
package canary

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/canary"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

var (
	env *gwtest.Env
	// gw is the canary Gateway as the profile's reach mode reaches it.
	gw *gwtest.Gateway
)

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "canary", fixtures.Files, features.SupportGateway, features.SupportHTTPRoute)
}

// url is the canary Gateway's HTTP listener with path.
func url(path string) string { return "http://" + gw.Addr(80) + path }

// applyRoute applies a rendered route, waits until it is Accepted with ResolvedRefs, and
// converges on it.
func applyRoute(ctx context.Context, file string, data map[string]any) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, data)
}
