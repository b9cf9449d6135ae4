// Package translate turns a snapshot of Gateway API and core objects into one IR snapshot per
// Gateway plus the status of every object, as a pure function without a Kubernetes client.
package translate
