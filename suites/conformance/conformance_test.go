//go:build conformance

package conformance

import (
	"os"
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

// TestConformance is the upstream suite with the upstream flags. Filter tests with the suite's
// own --run-test / --skip-tests flags, not `go test -run` (field-notes: -run does not reach the
// suite's subtests reliably and breaks the report's statistics).
func TestConformance(t *testing.T) {
	if os.Getenv("KUBECONFIG") == "" {
		if _, err := os.Stat(os.ExpandEnv("$HOME/.kube/config")); err != nil {
			t.Fatal("no cluster: set KUBECONFIG to the cluster under test (gatecheck run does this)")
		}
	}
	opts := conformance.DefaultOptions(t)
	if opts.ReportOutputPath != "" && opts.Implementation.Validate() != nil {
		t.Fatal("--report-output needs --organization, --project, --url, --version and --contact (the implementation profile's `report` section)")
	}
	conformance.RunConformanceWithOptions(t, opts)
}
