// Package render writes a model.Report as JSON, one self-contained HTML page, JUnit XML and the
// upstream ConformanceReport YAML.
package render
