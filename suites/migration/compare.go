package migration

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	fixtures "github.com/gatecheck/gatecheck/fixtures/migration"
	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/migrate"
	"github.com/gatecheck/gatecheck/migrate/check"
	"github.com/gatecheck/gatecheck/reports/model"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

var (
	plan          check.Plan
	ingressTarget check.Target
)

// converge waits until t answers req from backend (the data plane has the configuration).
func converge(ctx context.Context, what string, t check.Target, req check.Request, backend string) {
	GinkgoHelper()
	start := time.Now()
	deadline, next := start.Add(gwtest.ConvergeTimeout), start.Add(5*time.Second)
	inARow := 0
	for inARow < gwtest.ConvergeInARow {
		a := t.Do(ctx, req)
		if a.Backend == backend && a.Status == 200 {
			inARow++
			continue
		}
		inARow = 0
		if time.Now().After(deadline) {
			Fail(fmt.Sprintf("%s never served %s from %s within %s (last answer: %s)", what, req, backend, gwtest.ConvergeTimeout, a))
		}
		if time.Now().After(next) {
			fmt.Fprintf(GinkgoWriter, "waiting for %s to serve %s from %s (%s so far; last answer: %s)\n", what, req, backend, time.Since(start).Round(time.Second), a)
			next = time.Now().Add(5 * time.Second)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// applyGateway applies Gateway API objects, waits until they are ready and returns the target.
func applyGateway(ctx context.Context, name string, objs []install.Object) check.Target {
	GinkgoHelper()
	env.Apply(ctx, objs)
	env.WaitReady(ctx, objs, name)
	gw, err := env.WaitGateway(ctx, name)
	Expect(err).NotTo(HaveOccurred())
	t := check.Target{HTTP: gw.Addr(80), HTTPS: gw.Addr(443)}
	converge(ctx, "Gateway "+name, t, check.Request{Scheme: "https", Host: "shop.example.com", Path: "/healthz", Why: "convergence"}, "api")
	converge(ctx, "Gateway "+name, t, check.Request{Scheme: "http", Host: "docs.example.com", Path: "/docs", Why: "convergence"}, "docs")
	return t
}

// compare runs the matrix through both and reports the table; it returns the result.
func compare(ctx context.Context, title string, gateway check.Target) check.Result {
	GinkgoHelper()
	res := check.Run(ctx, plan, ingressTarget, gateway)
	name, v := model.Entry(title+": Ingress vs Gateway, side by side", measurement(res))
	AddReportEntry(name, v, ReportEntryVisibilityNever)
	fmt.Fprint(GinkgoWriter, res.Table())
	return res
}

// measurement is the report's record of a comparison: every request, both answers, the first
// difference.
func measurement(res check.Result) *model.MigrationComparison {
	m := &model.MigrationComparison{Differing: res.Differing, First: -1, Decision: model.DecisionPass,
		Message: fmt.Sprintf("%d requests, every answer alike through both", len(res.Rows))}
	for i, r := range res.Rows {
		m.Rows = append(m.Rows, model.MigrationRow{Request: r.Request.String(), Ingress: r.Ingress.String(), Gateway: r.Gateway.String(), Diff: r.Diff})
		if r.Diff != "" && m.First < 0 {
			m.First = i
		}
	}
	if res.First != nil {
		m.Decision = model.DecisionFail
		m.Message = fmt.Sprintf("%d of %d requests differ; the first: %s: through the Ingress %s, through the Gateway %s (%s)",
			res.Differing, len(res.Rows), res.First.Request, res.First.Ingress, res.First.Gateway, res.First.Diff)
	}
	return m
}

// weights samples every canary split on both sides with the verdict engine.
func weights(ctx context.Context, title string, gateway check.Target) {
	GinkgoHelper()
	for _, s := range plan.Splits {
		for _, side := range []struct {
			name string
			t    check.Target
		}{{"Ingress", ingressTarget}, {"Gateway", gateway}} {
			d := env.Driver(side.t.URL(s.Scheme, s.Path))
			d.Host = s.Host
			d.InsecureSkipVerify = true
			cap := env.Requests(verdict.DefaultMaxRequests, 500)
			seq, err := verdict.NewSequential(s.Backends, env.VerdictConfig(cap))
			Expect(err).NotTo(HaveOccurred())
			v, _, err := traffic.Sample(ctx, d, seq, cap, 0)
			Expect(err).NotTo(HaveOccurred())
			name := fmt.Sprintf("%s: %s://%s%s through the %s declared %s", title, s.Scheme, s.Host, s.Path, side.name, backendsText(s.Backends))
			gwtest.ReportVerdict(name, v)
			Expect(v.Decision).To(Equal(verdict.Pass), "%s:\n%s", name, gwtest.Explain(v))
		}
	}
}

func backendsText(bs []verdict.Backend) string {
	var p []string
	for _, b := range bs {
		p = append(p, fmt.Sprintf("%s=%g", b.Name, b.Weight))
	}
	return strings.Join(p, ",")
}

var _ = Describe("Ingress to Gateway API migration", Ordered, Label("migration", "feature:ingress"), func() {
	BeforeAll(func(ctx SpecContext) {
		objs := env.Render(fixtures.Files, "ingresses.yaml", data)
		env.Apply(ctx, objs)
		plan = check.Matrix(ingresses())
		Expect(plan.Requests).NotTo(BeEmpty())
		for _, s := range plan.Skipped {
			fmt.Fprintln(GinkgoWriter, "skipped:", s)
		}
		addr := ingressAddress(ctx, "shop")
		ingressTarget = check.TargetAt(addr)
		converge(ctx, "the Ingresses", ingressTarget, check.Request{Scheme: "https", Host: "shop.example.com", Path: "/healthz", Why: "convergence"}, "api")
		converge(ctx, "the Ingresses", ingressTarget, check.Request{Scheme: "http", Host: "docs.example.com", Path: "/docs", Why: "convergence"}, "docs")
		AddReportEntry("request matrix", fmt.Sprintf("%d requests and %d canary split(s) derived from %d Ingresses; Ingress address %s", len(plan.Requests), len(plan.Splits), len(objs), addr))
	})

	It("the hand-written migration (fixtures/migration/migration.yaml) answers every request as the Ingresses do", func(ctx SpecContext) {
		t := applyGateway(ctx, "by-hand", env.Render(fixtures.Files, "migration.yaml", map[string]any{"Gateway": "by-hand", "SeedMistake": false}))
		res := compare(ctx, "by hand", t)
		Expect(res.Differing).To(BeZero(), "%d of %d requests differ; first: %s\n%s", res.Differing, len(res.Rows), firstText(res), res.Table())
		weights(ctx, "by hand", t)
	})

	It("gatecheck migrate's output answers every request as the Ingresses do", func(ctx SpecContext) {
		conv, err := migrate.Convert(ingresses(), migrate.Options{GatewayClass: env.Config.GatewayClass, GatewayName: "migrated"})
		Expect(err).NotTo(HaveOccurred())
		Expect(conv.Unsupported()).To(BeEmpty())
		out, err := migrate.Marshal(conv)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("gatecheck migrate output", string(out))
		objs, err := install.Decode("gatecheck migrate output", out)
		Expect(err).NotTo(HaveOccurred())
		t := applyGateway(ctx, "migrated", objs)
		res := compare(ctx, "gatecheck migrate", t)
		Expect(res.Differing).To(BeZero(), "%d of %d requests differ; first: %s\n%s", res.Differing, len(res.Rows), firstText(res), res.Table())
		weights(ctx, "gatecheck migrate", t)
	})

	// The negative control: the /api rule matches Exact where the Ingress says Prefix, so
	// /api/... reaches another backend (or none). On a correct implementation the answers
	// must differ, and the report must show the first request that does.
	It("seeded mistake (Exact where the Ingress says Prefix) fails, showing the first differing request", Label("negative"), func(ctx SpecContext) {
		t := applyGateway(ctx, "mistake", env.Render(fixtures.Files, "migration.yaml", map[string]any{"Gateway": "mistake", "SeedMistake": true}))
		res := compare(ctx, "seeded mistake", t)
		Expect(res.First).NotTo(BeNil(), "the seeded mistake went unnoticed: every request answered alike\n%s", res.Table())
		AddReportEntry("seeded mistake: first differing request (must fail)", firstText(res))
		Expect(res.First.Request.Path).To(HavePrefix("/api"), "the first difference should be on /api: %s", firstText(res))
		fmt.Fprintf(GinkgoWriter, "failed as it must: %s\n", firstText(res))
	})
})

func firstText(r check.Result) string {
	if r.First == nil {
		return "none"
	}
	return fmt.Sprintf("%s: through the Ingress %s, through the Gateway %s (%s)", r.First.Request, r.First.Ingress, r.First.Gateway, r.First.Diff)
}
