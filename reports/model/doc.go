// Package model is gatecheck's versioned report: run metadata, suites, specs and the typed
// measurements suites attach to specs through Ginkgo report entries.
package model
