package impls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKnownFailuresValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, conformance, want string }{
		{"valid", "knownFailures: [{test: HTTPRouteMultipleGateways, reason: one address}]", ""},
		{"no reason", "knownFailures: [{test: HTTPRouteMultipleGateways}]", "conformance.knownFailures[0].reason: required"},
		{"blank reason", "knownFailures: [{test: HTTPRouteMultipleGateways, reason: \"  \"}]", "conformance.knownFailures[0].reason: required"},
		{"not a test name", "knownFailures: [{test: httproute-weight, reason: r}]", `conformance.knownFailures[0].test: "httproute-weight" is not an upstream test name`},
		{"twice", "knownFailures: [{test: HTTPRouteWeight, reason: r}, {test: HTTPRouteWeight, reason: r}]", "conformance.knownFailures[1].test: HTTPRouteWeight is listed twice"},
		{"also skipped", "skipTests: [HTTPRouteWeight]\n  knownFailures: [{test: HTTPRouteWeight, reason: r}]", "conformance.knownFailures[0].test: HTTPRouteWeight is also in conformance.skipTests"},
		{"unknown field", "knownFailures: [{test: HTTPRouteWeight, why: r}]", `unknown field "why"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "profile.yaml")
			body := strings.Replace(good, "  profiles: [GATEWAY-HTTP]\n", "  profiles: [GATEWAY-HTTP]\n  "+tc.conformance+"\n", 1)
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Load() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Load() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
