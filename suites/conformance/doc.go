// Package conformance runs the upstream Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance, pinned v1.6.3) under plain `go test`, because it needs a
// real *testing.T. It is built only with the `conformance` tag, so `make test` never reaches for a
// cluster; `gatecheck run` compiles it (go test -c -tags conformance) and runs it with the
// upstream flags (--gateway-class, --conformance-profiles, --report-output, ...).
package conformance
