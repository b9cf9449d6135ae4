package udp

import (
	"regexp"
	"testing"
	"time"

	fixtures "github.com/gatecheck/gatecheck/fixtures/udp"
)

// TestIdleTimeoutMatchesFixture: the expiry specs wait relative to idleTimeout, so it must be
// what the suite's Gateway asks for. (The fixture is a template, not YAML until rendered, so
// the annotation is read as text.)
func TestIdleTimeoutMatchesFixture(t *testing.T) {
	data, err := fixtures.Files.ReadFile("suite.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`gatecheck\.dev/udp-idle-timeout:\s*"?([0-9a-z.]+)`).FindAllSubmatch(data, -1)
	if len(m) != 1 {
		t.Fatalf("fixtures/udp/suite.yaml: want one gatecheck.dev/udp-idle-timeout annotation, found %d", len(m))
	}
	d, err := time.ParseDuration(string(m[0][1]))
	if err != nil || d != idleTimeout {
		t.Fatalf("fixtures/udp/suite.yaml asks for udp-idle-timeout %q; the suite waits relative to %v", m[0][1], idleTimeout)
	}
}
