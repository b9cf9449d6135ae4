package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gatecheck/gatecheck/reports/model"
)

// File names WriteAll uses inside the output directory.
const (
	JSONFile        = "report.json"
	HTMLFile        = "report.html"
	JUnitFile       = "junit.xml"
	ConformanceFile = "conformance-report.yaml"
)

// JSON writes the report's canonical JSON.
func JSON(w io.Writer, r *model.Report) error {
	b, err := r.MarshalIndent()
	if err != nil {
		return fmt.Errorf("encode report JSON: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// ConformanceYAML writes the upstream ConformanceReport exactly as the conformance suite wrote it.
func ConformanceYAML(w io.Writer, r *model.Report) error {
	if r.Conformance == nil || r.Conformance.Raw == "" {
		return errors.New("report has no ConformanceReport")
	}
	_, err := io.WriteString(w, r.Conformance.Raw)
	return err
}

// WriteAll renders every format into dir, creating it, and returns the paths it wrote.
// conformance-report.yaml is written only when the report carries one. Each file is rendered
// in memory first so a rendering error leaves no half-written file.
func WriteAll(dir string, r *model.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create report directory: %w", err)
	}
	type job struct {
		name   string
		render func(io.Writer, *model.Report) error
	}
	jobs := []job{{JSONFile, JSON}, {HTMLFile, HTML}, {JUnitFile, JUnit}}
	if r.Conformance != nil && r.Conformance.Raw != "" {
		jobs = append(jobs, job{ConformanceFile, ConformanceYAML})
	}
	var written []string
	for _, j := range jobs {
		var buf bytes.Buffer
		if err := j.render(&buf, r); err != nil {
			return written, fmt.Errorf("render %s: %w", j.name, err)
		}
		p := filepath.Join(dir, j.name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}
