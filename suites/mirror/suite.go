// The mirror suite checks HTTPRoute request mirroring by request id: every request (or the
// declared share) reaches the mirror backend, and a broken mirror never affects the client.
package mirror

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/mirror"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

var (
	env *gwtest.Env
	gw  *gwtest.Gateway
)

// adminPort is the echo backend's records admin port (--admin-addr in the echo partial).
const adminPort = 9090

// Setup prepares what every spec of the suite shares; the one binary for all suites
// (suites/all) runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "mirror", fixtures.Files, features.SupportGateway, features.SupportHTTPRoute, features.SupportHTTPRouteRequestMirror)
}

func url(path string) string { return "http://" + gw.Addr(80) + path }

func applyRoute(ctx context.Context, file string, data map[string]any) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, data)
}

// mirrorAdmins returns the records admin URL of every ready mirror Pod: its Pod IP, or a
// port-forward to it when the reach mode says the runner cannot route to the cluster.
func mirrorAdmins(ctx context.Context) []string {
	GinkgoHelper()
	addrs, err := env.PodAddrs(ctx, "app=mirror", adminPort)
	Expect(err).NotTo(HaveOccurred())
	Expect(addrs).NotTo(BeEmpty(), "no ready mirror Pod in %s", env.Namespace)
	var out []string
	for _, a := range addrs {
		out = append(out, "http://"+a)
	}
	fmt.Fprintf(GinkgoWriter, "mirror records at %v\n", out)
	return out
}
