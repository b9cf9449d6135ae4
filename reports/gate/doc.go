// Package gate decides a run's exit code from a report and a gate file: which suites and
// conformance profiles must pass, which may fail or skip, and the tolerances suites read.
package gate
