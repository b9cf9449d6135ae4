package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMigrateArgs(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := newRootCmd()
	var o, e bytes.Buffer
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append([]string{"migrate"}, args...))
	err := cmd.Execute()
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		code = 2
	}
	return o.String(), e.String(), code
}

const unsupportedIngress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: auth
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/auth-url: http://auth/check
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`

// An unsupported annotation is named on stderr and fails the command (nothing written)
// unless --continue-on-unsupported.
func TestMigrateUnsupportedAnnotationExitCode(t *testing.T) {
	out, errOut, code := runMigrateArgs(t, unsupportedIngress, "-f", "-", "--gateway-class", "gc")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "unsupported: Ingress shop/auth metadata.annotations[nginx.ingress.kubernetes.io/auth-url]") {
		t.Errorf("stderr does not name the annotation:\n%s", errOut)
	}
	if out != "" {
		t.Errorf("wrote output although it failed:\n%s", out)
	}
	out, errOut, code = runMigrateArgs(t, unsupportedIngress, "-f", "-", "--gateway-class", "gc", "--continue-on-unsupported")
	if code != 0 {
		t.Fatalf("with --continue-on-unsupported: exit %d, want 0; stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "kind: HTTPRoute") || !strings.Contains(out, "#   unsupported: Ingress shop/auth") {
		t.Errorf("output lacks the route or the finding:\n%s", out)
	}
}

func TestMigrateBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		stdin string
		args  []string
		want  string
	}{
		"no class":    {unsupportedIngress, []string{"-f", "-"}, "--gateway-class is required"},
		"no input":    {"", []string{"--gateway-class", "gc"}, "no input"},
		"old version": {"apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: a}\n", []string{"-f", "-", "--gateway-class", "gc"}, `Ingress a: apiVersion "extensions/v1beta1"`},
		"typo":        {"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\nspec: {rulez: []}\n", []string{"-f", "-", "--gateway-class", "gc"}, `unknown field "rulez"`},
		"no ingress":  {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", []string{"-f", "-", "--gateway-class", "gc"}, "no networking.k8s.io/v1 Ingress"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := newRootCmd()
			var o, e bytes.Buffer
			cmd.SetOut(&o)
			cmd.SetErr(&e)
			cmd.SetIn(strings.NewReader(tc.stdin))
			cmd.SetArgs(append([]string{"migrate"}, tc.args...))
			err := cmd.Execute()
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("err %v, want exit 2", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// probe migration: exit 0 when both sides answer alike, 1 naming the first differing request
// when the Gateway side matches /api exactly where the Ingress says Prefix.
func TestProbeMigrationExitCodes(t *testing.T) {
	route := func(apiExact bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b := "web"
			if r.URL.Path == "/api" || (!apiExact && strings.HasPrefix(r.URL.Path, "/api/")) {
				b = "api"
			}
			fmt.Fprintf(w, `{"backend":%q,"path":%q}`, b, r.URL.Path)
		})
	}
	ing, same, wrong := httptest.NewServer(route(false)), httptest.NewServer(route(false)), httptest.NewServer(route(true))
	defer ing.Close()
	defer same.Close()
	defer wrong.Close()
	hp := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	file := filepath.Join(t.TempDir(), "ing.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: ns}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(gw *httptest.Server) (string, error) {
		cmd := newRootCmd()
		var o, e bytes.Buffer
		cmd.SetOut(&o)
		cmd.SetErr(&e)
		cmd.SetArgs([]string{"probe", "migration", "-f", file, "--ingress-http", hp(ing), "--ingress-https", "127.0.0.1:1", "--gateway-http", hp(gw), "--gateway-https", "127.0.0.1:1"})
		err := cmd.Execute()
		return o.String(), err
	}
	if out, err := run(same); err != nil {
		t.Fatalf("same routing: %v\n%s", err, out)
	}
	out, err := run(wrong)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("seeded mistake: err %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(err.Error(), "first: GET http://shop.example.com/api/sub/page") || !strings.Contains(out, "first differing request") {
		t.Errorf("the first differing request is not shown: %v\n%s", err, out)
	}
}
