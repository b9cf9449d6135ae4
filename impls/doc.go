// Package impls loads and validates implementation profiles (impls/<name>/profile.yaml): how
// to install a Gateway API implementation, which GatewayClass it serves, what it claims, and how
// the test runner reaches its Gateways. The reference profile is the first; any other
// implementation is one more profile.
package impls
