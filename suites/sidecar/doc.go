// Package sidecar is the native sidecar lifecycle suite (Ginkgo specs; suites/all runs them): Pods of
// echo-backend lifecycle containers whose millisecond events are merged into timelines
// (package timeline) and checked for start order, startupProbe gating, readiness, termination
// order, crash restarts, Job completion, resource accounting and mesh proxy readiness.
//
// Run it against a cluster with
//
//	gatecheck __suite sidecar -ginkgo.v -sidecar.kubeconfig=/path/to/kubeconfig
//	GATECHECK_SUITE=sidecar go test ./suites/all -v -timeout 20m -sidecar.kubeconfig=/path/to/kubeconfig
//
// or with the environment `gatecheck run` sets (KUBECONFIG and GATECHECK_GATEWAY_CLASS; a lone
// KUBECONFIG is not enough, so `go test ./...` never runs it by accident). Without a cluster
// the suite skips; with a server that drops an init container's restartPolicy it skips and
// names the server version.
package sidecar
