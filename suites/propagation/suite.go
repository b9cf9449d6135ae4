// The propagation suite measures how fast route changes reach the data plane and whether
// changes under load cost a single failed request, as gateway-api-bench measures them.
package propagation

import (
	. "github.com/onsi/ginkgo/v2"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/propagation"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "propagation", fixtures.Files, features.SupportGateway, features.SupportHTTPRoute)
}

func url(path string) string { return "http://" + gw.Addr(80) + path }
