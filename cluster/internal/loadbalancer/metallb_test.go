package loadbalancer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gatecheck/gatecheck/install"
)

const miniManifest = `apiVersion: v1
kind: Namespace
metadata: {name: metallb-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller, namespace: metallb-system}
spec:
  template:
    spec:
      containers:
      - name: controller
        args: [--port=7472, --webhook-mode=enabled]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: metallb-webhook-configuration}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: speaker, namespace: metallb-system}
`

// TestObjects checks what Install applies: the manifest without the speaker on the host
// cluster (kube-proxy answers pool addresses; nothing may be announced), with it and an
// L2Advertisement on kind, and the pool last.
func TestObjects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		speaker      bool
		wantManifest []string
		wantPool     []string
	}{
		{"host: controller only", false, []string{"Namespace metallb-system", "Deployment metallb-system/controller"}, []string{"IPAddressPool metallb-system/gatecheck"}},
		{"kind: speaker and L2", true, []string{"Namespace metallb-system", "Deployment metallb-system/controller", "DaemonSet metallb-system/speaker"}, []string{"IPAddressPool metallb-system/gatecheck", "L2Advertisement metallb-system/gatecheck"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, p, err := Objects(Options{Manifest: []byte(miniManifest), Pool: []string{"10.0.1.0/24"}, Speaker: c.speaker})
			if err != nil {
				t.Fatal(err)
			}
			var gotM, gotP []string
			for _, o := range m {
				gotM = append(gotM, strings.SplitN(o.String(), " (", 2)[0])
			}
			for _, o := range p {
				gotP = append(gotP, strings.SplitN(o.String(), " (", 2)[0])
			}
			if diff := cmp.Diff(c.wantManifest, gotM); diff != "" {
				t.Errorf("manifest objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.wantPool, gotP); diff != "" {
				t.Errorf("pool objects (-want +got):\n%s", diff)
			}
			containers, _, _ := unstructured.NestedSlice(m[1].Obj.Object, "spec", "template", "spec", "containers")
			if diff := cmp.Diff([]any{"--port=7472", "--webhook-mode=disabled"}, containers[0].(map[string]any)["args"]); diff != "" {
				t.Errorf("controller args (-want +got):\n%s", diff)
			}
			addrs, _, _ := unstructured.NestedStringSlice(p[0].Obj.Object, "spec", "addresses")
			if diff := cmp.Diff([]string{"10.0.1.0/24"}, addrs); diff != "" {
				t.Errorf("IPAddressPool spec.addresses (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := Objects(Options{Manifest: []byte(miniManifest)}); err == nil {
		t.Error("Objects without a pool: got nil error; want one naming field Pool")
	}
}

// TestImagesMatchManifest checks the images are tagged exactly as metallb-native.yaml
// references them, so the manifest applies unchanged. It reads the manifest from the module
// cache and skips when the module cannot be had (offline, empty cache).
func TestImagesMatchManifest(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := Manifest(ctx)
	if err != nil {
		t.Skipf("MetalLB module not available: %v", err)
	}
	var refs []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "image:" {
			refs = append(refs, f[1])
		}
	}
	var tags []string
	for _, s := range Images(true) {
		tags = append(tags, s.Tags...)
	}
	if diff := cmp.Diff(refs, tags); diff != "" {
		t.Errorf("image references of metallb-native.yaml (-manifest +images):\n%s", diff)
	}
	if strings.Contains(string(data), "imagePullPolicy: Always") {
		t.Error("metallb-native.yaml pulls Always; the loaded images would be ignored")
	}
}

// realObjects is what Objects makes of MetalLB's own manifest (from the module cache; the test
// skips when the module cannot be had: offline, empty cache).
func realObjects(t *testing.T, speaker bool) []install.Object {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := Manifest(ctx)
	if err != nil {
		t.Skipf("MetalLB module not available: %v", err)
	}
	m, _, err := Objects(Options{Manifest: data, Pool: []string{"10.0.1.0/24"}, Speaker: speaker})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestQuickReadiness checks that the real manifest's controller and speaker get a readiness
// probe that starts after 1 s and repeats every second, and keep upstream's liveness probe.
func TestQuickReadiness(t *testing.T) {
	t.Parallel()
	m := realObjects(t, true)
	seen := 0
	for _, o := range m {
		if k := o.Obj.GetKind(); k != "Deployment" && k != "DaemonSet" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Obj.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			cm := c.(map[string]any)
			r, ok := cm["readinessProbe"].(map[string]any)
			if !ok {
				continue
			}
			seen++
			if r["initialDelaySeconds"] != int64(1) || r["periodSeconds"] != int64(1) {
				t.Errorf("%s container %v readinessProbe = %v; want initialDelaySeconds 1, periodSeconds 1", o, cm["name"], r)
			}
			if l, ok := cm["livenessProbe"].(map[string]any); ok && fmt.Sprint(l["periodSeconds"]) != "10" {
				t.Errorf("%s container %v livenessProbe changed: %v", o, cm["name"], l)
			}
		}
	}
	if seen != 2 {
		t.Errorf("saw %d readiness probes; want 2 (controller and speaker)", seen)
	}
}

// TestWithoutWebhookOnRealManifest: on MetalLB's own manifest, the webhook configuration is
// left out and the controller runs with --webhook-mode=disabled, so it is Ready without
// waiting for a webhook certificate to reach its Pod (withoutWebhook).
func TestWithoutWebhookOnRealManifest(t *testing.T) {
	t.Parallel()
	m := realObjects(t, false)
	disabled := false
	for _, o := range m {
		if o.Obj.GetKind() == "ValidatingWebhookConfiguration" {
			t.Errorf("%s is applied; want it left out", o)
		}
		if o.Obj.GetKind() != "Deployment" || o.Obj.GetName() != "controller" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Obj.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			n := 0
			for _, a := range c.(map[string]any)["args"].([]any) {
				if strings.HasPrefix(a.(string), "--webhook-mode") {
					n++
					disabled = a == "--webhook-mode=disabled"
				}
			}
			if n != 1 {
				t.Errorf("controller has %d --webhook-mode args; want exactly one", n)
			}
		}
	}
	if !disabled {
		t.Error("controller does not run with --webhook-mode=disabled")
	}
}
