package gatewayapi

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func establishedCRD(name, v, ch string) apiextensionsv1.CustomResourceDefinition {
	c := crd(name, v, ch)
	c.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	return c
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Policy{"": PolicyInstall, "install": PolicyInstall, "skip": PolicySkip, " require": PolicyRequire} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePolicy("keep"); err == nil || !strings.Contains(err.Error(), `"keep"`) || !strings.Contains(err.Error(), "install, skip or require") {
		t.Errorf("ParsePolicy(keep) = %v; want an error naming the value and the choices", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	need := []string{"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io"}
	gw := establishedCRD("gateways.gateway.networking.k8s.io", "v1.6.3", "standard")
	hr := establishedCRD("httproutes.gateway.networking.k8s.io", "v1.6.3", "standard")
	oldHR := establishedCRD("httproutes.gateway.networking.k8s.io", "v1.5.0", "experimental")
	pending := crd("httproutes.gateway.networking.k8s.io", "v1.6.3", "standard")
	other := establishedCRD("widgets.example.com", "", "")
	other.Spec.Group = "example.com"
	tests := []struct {
		name  string
		items []apiextensionsv1.CustomResourceDefinition
		want  Want
		// errs are substrings the error must contain; none means no error.
		errs []string
	}{
		{"skip, all there", []apiextensionsv1.CustomResourceDefinition{gw, hr, other}, Want{Policy: PolicySkip, Need: need}, nil},
		{"skip ignores versions", []apiextensionsv1.CustomResourceDefinition{gw, oldHR}, Want{Policy: PolicySkip, Need: need}, nil},
		{"skip with the upstream suite refuses another bundle", []apiextensionsv1.CustomResourceDefinition{oldHR}, Want{Policy: PolicySkip, Need: need[1:], Conformance: true},
			[]string{"are v1.5.0 (experimental channel", "conformance.allowCrdsMismatch"}},
		{"skip with the upstream suite, mismatch allowed", []apiextensionsv1.CustomResourceDefinition{oldHR}, Want{Policy: PolicySkip, Need: need[1:], Conformance: true, AllowMismatch: true}, nil},
		{"skip with the upstream suite, pinned bundle", []apiextensionsv1.CustomResourceDefinition{gw, hr}, Want{Policy: PolicySkip, Need: need, Conformance: true}, nil},
		{"skip, one missing", []apiextensionsv1.CustomResourceDefinition{gw, other}, Want{Policy: PolicySkip, Need: need},
			[]string{"does not have: httproutes.gateway.networking.k8s.io"}},
		{"skip, not established", []apiextensionsv1.CustomResourceDefinition{gw, pending}, Want{Policy: PolicySkip, Need: need},
			[]string{"not Established after a minute: httproutes.gateway.networking.k8s.io"}},
		{"require, matching", []apiextensionsv1.CustomResourceDefinition{gw, hr}, Want{Policy: PolicyRequire, Need: need}, nil},
		{"require, mismatch names CRD, annotation, found and wanted", []apiextensionsv1.CustomResourceDefinition{gw, oldHR}, Want{Policy: PolicyRequire, Need: need},
			[]string{`CRD httproutes.gateway.networking.k8s.io: annotation gateway.networking.k8s.io/bundle-version is "v1.5.0"; want "v1.6.3"`,
				`CRD httproutes.gateway.networking.k8s.io: annotation gateway.networking.k8s.io/channel is "experimental"; want "standard"`,
				"conformance.allowCrdsMismatch"}},
		{"require, wanted version and channel", []apiextensionsv1.CustomResourceDefinition{oldHR}, Want{Policy: PolicyRequire, Version: "v1.5.0", Channel: "experimental", Need: need[1:]}, nil},
		{"require, mismatch allowed", []apiextensionsv1.CustomResourceDefinition{gw, oldHR}, Want{Policy: PolicyRequire, Need: need, AllowMismatch: true}, nil},
		{"require, missing even when mismatch allowed", []apiextensionsv1.CustomResourceDefinition{oldHR}, Want{Policy: PolicyRequire, Need: need, AllowMismatch: true},
			[]string{"does not have: gateways.gateway.networking.k8s.io"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tc.items, tc.want).Err(tc.want)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("got %v; want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error; want one containing %q", tc.errs)
			}
			for _, s := range tc.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q; want it to contain %q", err, s)
				}
			}
		})
	}
}
