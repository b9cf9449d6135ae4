// Package controller is the reference implementation's control plane: a controller-runtime
// manager (manager.go) whose watch events (events.go) collapse into one reconcile
// (reconcile.go) that translates what changed, publishes each Gateway's IR to its proxies
// over mutual TLS (delivery.go, pki.go), provisions a proxy Deployment, Service and
// certificate per Gateway and writes its status once the proxies acknowledged
// (gateway.go, provision.go), and queues route statuses (routestatus.go) for the write
// workers (writes.go). It reads only the Secrets listeners reference (secrets.go).
package controller
