package render_test

import (
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/reports/model"
)

// A migration comparison renders as a side-by-side table with the first differing request
// marked and named in the message.
func TestHTMLMigrationComparison(t *testing.T) {
	t.Parallel()
	m := model.New("seeded mistake: Ingress vs Gateway, side by side", &model.MigrationComparison{
		Rows: []model.MigrationRow{
			{Request: "GET http://shop.example.com/api (rule path)", Ingress: "200 from api path /api", Gateway: "200 from api path /api"},
			{Request: "GET http://shop.example.com/api/sub/page (below the rule path)", Ingress: "200 from api path /api/sub/page", Gateway: "200 from web path /api/sub/page", Diff: `backend "api" vs "web"`},
		},
		Differing: 1, First: 1, Decision: model.DecisionFail,
		Message: "1 of 2 requests differ; the first: GET http://shop.example.com/api/sub/page",
	})
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &model.Report{SchemaVersion: model.SchemaVersion, Suites: []model.Suite{{Name: "migration", Specs: []model.Spec{{
		Name: "seeded mistake", Outcome: model.OutcomePassed, Measurements: []model.Measurement{m},
	}}}}}
	page := renderHTML(t, r)
	for _, want := range []string{
		"<th>through the Ingress</th><th>through the Gateway</th>",
		"<td>FIRST DIFFERENCE</td><td>GET http://shop.example.com/api/sub/page (below the rule path)</td><td>200 from api path /api/sub/page</td><td>200 from web path /api/sub/page</td>",
		"<td>same</td><td>GET http://shop.example.com/api (rule path)</td>",
		"1 of 2 requests differ; the first: GET http://shop.example.com/api/sub/page",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
