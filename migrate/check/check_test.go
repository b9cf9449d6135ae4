package check

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

const ingressesYAML = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: ns}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
`

func ingressesFrom(t *testing.T, s string) []*networkingv1.Ingress {
	var out []*networkingv1.Ingress
	for _, doc := range strings.Split(s, "\n---\n") {
		ing := &networkingv1.Ingress{}
		if err := yaml.UnmarshalStrict([]byte(doc), ing); err != nil {
			t.Fatal(err)
		}
		out = append(out, ing)
	}
	return out
}

// router answers like an echo backend behind a proxy: /api as a segment prefix (or exact,
// when apiExact) goes to api, the rest of shop.example.com to web, other hosts 404.
func router(apiExact bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "shop.example.com" && !strings.EqualFold(r.Host, "shop.example.com") {
			http.NotFound(w, r)
			return
		}
		backend := "web"
		if r.URL.Path == "/api" || (!apiExact && strings.HasPrefix(r.URL.Path, "/api/")) {
			backend = "api"
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"backend": backend, "path": r.URL.Path})
	})
}

func TestMatrixHasNearMisses(t *testing.T) {
	p := Matrix(ingressesFrom(t, ingressesYAML))
	var all []string
	for _, r := range p.Requests {
		all = append(all, r.String())
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		"GET http://shop.example.com/api (rule path)",
		"GET http://shop.example.com/api/ (near-miss: trailing slash)",
		"GET http://shop.example.com/apix (near-miss: the path as a string prefix)",
		"GET http://shop.example.com/API (near-miss: path in upper case)",
		"GET http://shop.example.com/api/sub/page (below the rule path)",
		"GET http://other-shop.example.com/ (near-miss: a host no rule has)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("matrix lacks %q:\n%s", want, text)
		}
	}
}

func TestRunAgreesAndFindsTheSeededMistake(t *testing.T) {
	good, good2, bad := httptest.NewServer(router(false)), httptest.NewServer(router(false)), httptest.NewServer(router(true))
	defer good.Close()
	defer good2.Close()
	defer bad.Close()
	at := func(s *httptest.Server) Target {
		return Target{HTTP: strings.TrimPrefix(s.URL, "http://"), HTTPS: "127.0.0.1:1"}
	}
	plan := Matrix(ingressesFrom(t, ingressesYAML))
	ctx := context.Background()
	if res := Run(ctx, plan, at(good), at(good2)); res.Differing != 0 {
		t.Fatalf("identical routers differ:\n%s", res.Table())
	}
	res := Run(ctx, plan, at(good), at(bad))
	if res.First == nil {
		t.Fatalf("Exact-for-Prefix mistake not found:\n%s", res.Table())
	}
	if res.First.Request.Path != "/api/sub/page" || res.First.Diff != `backend "api" vs "web"` {
		t.Errorf("first difference %s: %s", res.First.Request, res.First.Diff)
	}
	if !strings.Contains(res.Table(), "first differing request: GET http://shop.example.com/api/sub/page (below the rule path)") {
		t.Errorf("table does not show the first differing request:\n%s", res.Table())
	}
}

func TestCompareSplitBackendsAgree(t *testing.T) {
	splits := []Split{{Backends: nil}}
	if d := Compare(Answer{Status: 200, Backend: "v1"}, Answer{Status: 200, Backend: "v2"}, splits); d == "" {
		t.Error("different backends outside any split agree")
	}
	splits = Matrix(ingressesFrom(t, ingressesYAML+`
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: canary, namespace: ns, annotations: {nginx.ingress.kubernetes.io/canary: "true", nginx.ingress.kubernetes.io/canary-weight: "10"}}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web-v2, port: {number: 80}}}}
`)).Splits
	if len(splits) != 1 || splits[0].Backends[0].Name != "web" || splits[0].Backends[0].Weight != 90 || splits[0].Backends[1].Weight != 10 {
		t.Fatalf("splits %+v", splits)
	}
	if d := Compare(Answer{Status: 200, Backend: "web", Path: "/"}, Answer{Status: 200, Backend: "web-v2", Path: "/"}, splits); d != "" {
		t.Errorf("backends of one split differ: %s", d)
	}
}
