// Package gwtest is what the Gateway API traffic suites share: fixtures rendered and applied
// with server-side apply (deleted again by DeferCleanup), waits with progress for Gateways,
// routes and Deployments, the GatewayClass's claimed features, and report entries.
package gwtest
