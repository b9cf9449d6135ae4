package gwtest

import (
	"context"
	"io/fs"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// SetupSuite is the BeforeSuite of every traffic suite: it sets up the environment, skips
// unless the GatewayClass claims the features, applies the suite's suite.yaml fixture (its
// Gateway, named after the suite, and backends), waits for it, and returns the Gateway as the
// reach mode reaches it.
func SetupSuite(ctx context.Context, suite string, files fs.FS, required ...features.FeatureName) (*Env, *Gateway) {
	GinkgoHelper()
	env := Setup(ctx, suite)
	env.Require(required...)
	env.ApplyFixture(ctx, files, "suite.yaml", nil)
	// ApplyFixture waited for the Gateway already; resolving it again would open a second
	// set of port-forwards.
	if gw := env.Gateway(suite); gw != nil {
		return env, gw
	}
	gw, err := env.WaitGateway(ctx, suite)
	Expect(err).NotTo(HaveOccurred())
	return env, gw
}

// ApplyFixture renders a fixture, applies it (deleting it after the spec or suite), and waits
// until its routes are Accepted with ResolvedRefs on the suite's Gateway and its Deployments
// are available.
func (e *Env) ApplyFixture(ctx context.Context, files fs.FS, file string, data map[string]any) {
	GinkgoHelper()
	objs := e.Render(files, file, data)
	e.Apply(ctx, objs)
	e.WaitReady(ctx, objs, e.suite)
}
