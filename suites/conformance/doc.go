// Package conformance runs the upstream Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance, pinned v1.6.3), which needs a real *testing.T. Test is
// the suite as a plain function of a *testing.T, streaming one event per test to the file named
// by $GATECHECK_CONFORMANCE_EVENTS so an interrupted run loses no finished test. The test binary
// built with the `conformance` tag (go test -c -tags conformance) calls it; `make test` never
// reaches for a cluster.
package conformance
