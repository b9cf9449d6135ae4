// Package controller is the reference implementation's control plane: a controller-runtime
// manager that batches watch events into one reconcile, translates a snapshot of every input,
// provisions a proxy per Gateway, delivers each Gateway's IR to its proxies and writes status.
package controller
