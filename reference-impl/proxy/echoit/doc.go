// Package echoit holds loopback integration tests that run real clients through the reference
// proxy to the team's echo backend (HTTP/1.1, h2c, TLS, gRPC unary and streaming, TCP). It is
// its own package so a change in the echo backend cannot break the proxy's unit tests.
package echoit
