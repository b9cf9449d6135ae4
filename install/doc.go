// Package install applies manifests to a cluster with server-side apply and waits, with
// progress, until what was applied is usable (CRDs Established, Deployments available,
// GatewayClasses Accepted).
package install
