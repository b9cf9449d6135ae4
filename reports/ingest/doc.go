// Package ingest reads what a run leaves behind (Ginkgo JSON reports, the upstream
// ConformanceReport YAML, saved gatecheck reports) into a model.Report.
package ingest
