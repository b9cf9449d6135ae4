package render_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/gate"
	"github.com/gatecheck/gatecheck/reports/ingest"
)

// A suite skipped because the GatewayClass does not claim its feature (a recorded Ginkgo run,
// reports/ingest/testdata/skipped) reads "not claimed" in the summary and on each spec, not
// "skipped", and the page's verdict is a pass.
func TestHTMLNotClaimed(t *testing.T) {
	t.Parallel()
	r, err := ingest.ReadFile(filepath.Join("..", "ingest", "testdata", "skipped", "notclaimed-suite.json"))
	if err != nil {
		t.Fatal(err)
	}
	gate.Default().Apply(r, "default")
	page := renderHTML(t, r)
	for _, want := range []string{
		"<th>not claimed</th>",
		`<span class="badge notClaimed" title="the GatewayClass does not claim HTTPRouteRequestMirror">not claimed</span>`,
		`<td class="n">3</td>`, // three mirror specs not claimed
		"not claimed: the GatewayClass does not claim HTTPRouteRequestMirror; not judged",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "skipped: not claimed") {
		t.Error(`page says "skipped: not claimed"; a not-claimed spec is not a plain skip`)
	}
}
