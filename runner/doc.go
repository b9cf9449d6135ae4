// Package runner is `gatecheck run` / `make conformance`: cluster, images, CRDs, the
// implementation from its profile, the upstream conformance suite, gatecheck's suites, reports
// and the gate, then teardown (also on Ctrl-C) unless asked to keep the cluster.
package runner
