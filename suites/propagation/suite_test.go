// The propagation suite measures how fast route changes reach the data plane and whether
// changes under load cost a single failed request, as gateway-api-bench measures them.
package propagation_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/propagation"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

func TestPropagation(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "gatecheck propagation")
}

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

var _ = BeforeSuite(func(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "propagation", fixtures.Files, features.SupportGateway, features.SupportHTTPRoute)
})

func url(path string) string { return "http://" + gw.Addr(80) + path }
