package main

import (
	"bytes"
	"errors"
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
