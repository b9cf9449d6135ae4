// The mirror suite checks HTTPRoute request mirroring by request id: every request (or the
// declared share) reaches the mirror backend, and a broken mirror never affects the client.
package mirror_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/mirror"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

func TestMirror(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "gatecheck mirror")
}

var (
	env *gwtest.Env
	gw  string
)

// adminPort is the echo backend's records admin port (--admin-addr in the echo partial).
const adminPort = 9090

var _ = BeforeSuite(func(ctx SpecContext) {
	env, gw = gwtest.SetupSuite(ctx, "mirror", fixtures.Files, features.SupportGateway, features.SupportHTTPRoute, features.SupportHTTPRouteRequestMirror)
})

func url(path string) string { return "http://" + gwtest.HostPort(gw, 80) + path }

func applyRoute(ctx context.Context, file string, data map[string]any) {
	GinkgoHelper()
	env.ApplyFixture(ctx, fixtures.Files, file, data)
}

// mirrorAdmins returns the records admin URL of every ready mirror Pod; the runner reaches
// Pod IPs directly.
func mirrorAdmins(ctx context.Context) []string {
	GinkgoHelper()
	ips, err := env.PodIPs(ctx, "app=mirror")
	Expect(err).NotTo(HaveOccurred())
	Expect(ips).NotTo(BeEmpty(), "no ready mirror Pod in %s", env.Namespace)
	var out []string
	for _, ip := range ips {
		out = append(out, "http://"+gwtest.HostPort(ip, adminPort))
	}
	fmt.Fprintf(GinkgoWriter, "mirror records at %v\n", out)
	return out
}
