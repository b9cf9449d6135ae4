// The canary suite checks weighted traffic splits through a Gateway with sequential share
// tests whose false-failure rate and power are stated in every verdict.
package canary_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/canary"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

func TestCanary(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "gatecheck canary")
}

var (
	env *gwtest.Env
	// gw is the canary Gateway as the profile's reach mode reaches it.
	gw *gwtest.Gateway
)

var _ = BeforeSuite(func(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "canary", fixtures.Files, features.SupportGateway, features.SupportHTTPRoute)
})

// url is the canary Gateway's HTTP listener with path.
func url(path string) string { return "http://" + gw.Addr(80) + path }

// applyRoute applies a rendered route, waits until it is Accepted with ResolvedRefs, and
// converges on it.
func applyRoute(ctx context.Context, file string, data map[string]any) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, data)
}
