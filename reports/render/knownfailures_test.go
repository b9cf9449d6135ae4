package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/model"
)

// A failed upstream test the profile documents is shown as a known failure with its reason; an
// undocumented failure stays "failed".
func TestHTMLUpstreamKnownFailure(t *testing.T) {
	t.Parallel()
	r := upstreamReport()
	r.Conformance = &model.Conformance{KnownFailures: []model.KnownFailure{{Test: "HTTPRouteWeight", Reason: "one address for every Gateway"}}}
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{`<span class="badge skipped">known failure</span>`, "documented by the profile: one address for every Gateway"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	r.Conformance = nil
	buf.Reset()
	if err := HTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "known failure") {
		t.Error("HTML without known failures shows one")
	}
}
