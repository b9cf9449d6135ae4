package sidecar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
	fixtures "github.com/gatecheck/gatecheck/fixtures/sidecar"
)

// TestFixturesRender renders every fixture in each of its shapes and decodes it, without a
// cluster, so a template or flag mistake shows up in `make test`.
func TestFixturesRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		extra map[string]any
		kinds []string
	}{
		{"order.yaml", nil, []string{"Pod"}},
		{"startupprobe.yaml", map[string]any{"StartupDelay": "3s"}, []string{"Pod"}},
		{"readiness.yaml", map[string]any{"ReadyDelay": "8s"}, []string{"Pod"}},
		{"termination.yaml", map[string]any{"GraceSeconds": 15, "Sidecar2StartupDelay": "0s"}, []string{"Pod"}},
		{"restart.yaml", map[string]any{"RestartPolicy": "Never", "CrashAfter": "2s"}, []string{"Pod"}},
		{"job.yaml", map[string]any{"MainRuns": "3s"}, []string{"Job"}},
		{"resources.yaml", map[string]any{"Native": true, "HelperCPU": "600m", "MainCPU": "600m"}, []string{"Pod"}},
		{"resources.yaml", map[string]any{"Native": false, "HelperCPU": "600m", "MainCPU": "600m"}, []string{"Pod"}},
		{"meshproxy.yaml", map[string]any{"Part": "target"}, []string{"Pod"}},
		{"meshproxy.yaml", map[string]any{"Part": "app", "Variant": "native", "Upstream": "http://10.0.0.7:8080", "ProxyPort": 15001}, []string{"Pod"}},
		{"meshproxy.yaml", map[string]any{"Part": "app", "Variant": "legacy-first", "Upstream": "http://10.0.0.7:8080", "ProxyPort": 15001}, []string{"Pod"}},
		{"meshproxy.yaml", map[string]any{"Part": "app", "Variant": "legacy-last", "Upstream": "http://10.0.0.7:8080", "ProxyPort": 15001}, []string{"Pod"}},
		{"wrongexpectation.yaml", nil, []string{"Pod"}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			raw, err := fixtures.Render(tc.file, params("x", tc.extra), templateFuncs)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
			for {
				var doc runtime.RawExtension
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("decode: %v\n%s", err, raw)
				}
				obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc.Raw, nil, nil)
				if err != nil {
					t.Fatalf("decode object: %v\n%s", err, doc.Raw)
				}
				kinds = append(kinds, gvk.Kind)
				if p, ok := obj.(*corev1.Pod); ok {
					checkArgs(t, p.Spec)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") {
				t.Errorf("got kinds %v; want %v", kinds, tc.kinds)
			}
		})
	}
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".yaml") && !seen[n] {
			t.Errorf("fixture %s is not rendered by this test", n)
		}
	}
}

// checkArgs catches containers of one Pod listening on the same port.
func checkArgs(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	ports := map[string]string{}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--addr="); ok && v != "" {
				if other, dup := ports[v]; dup {
					t.Errorf("containers %s and %s both listen on %s", other, c.Name, v)
				}
				ports[v] = c.Name
			}
		}
	}
}

// TestParseLifecycleLine feeds lines written by echo-backend's own formatter through the
// suite's parser, so a format change on either side fails here.
func TestParseLifecycleLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 7, 35, 0, 123e6, time.UTC)
	line := lifecycle.Event{Time: at, Container: "app", Name: lifecycle.EventExiting, Fields: map[string]string{"reason": "sigterm", "code": "0"}}.String()
	ev, ok, err := parseLifecycleLine(line)
	if err != nil || !ok {
		t.Fatalf("parse %q: ok=%v err=%v; want an event", line, ok, err)
	}
	if !ev.Time.Equal(at) || ev.Container != "app" || ev.Kind != "exiting" || ev.Detail != "code=0 reason=sigterm" {
		t.Errorf("got %+v; want app exiting at %s with detail code=0 reason=sigterm", ev, at)
	}
	for _, other := range []string{`time=2026-11-26T07:35:00.000Z level=INFO msg=listening addr=:9090`, ""} {
		if _, ok, err := parseLifecycleLine(other); ok || err != nil {
			t.Errorf("parse %q: got ok=%v err=%v; want it skipped as non-event output", other, ok, err)
		}
	}
	if _, _, err := parseLifecycleLine("1764142500123 2026-11-26T07:35:00.123Z app"); err == nil {
		t.Error("got no error for a truncated event line; want one")
	}
}

// TestLifecycleArgs pins the flag spelling the fixtures rely on.
func TestLifecycleArgs(t *testing.T) {
	t.Parallel()
	got, err := lifecycleArgs("name=main", "port=8080", "startup-delay=1s", "outbound=http://127.0.0.1:15001/")
	if err != nil {
		t.Fatal(err)
	}
	want := "--mode=lifecycle --events-file=/events/events.log --name=main --addr=:8080 --startup-delay=1s --outbound-url=http://127.0.0.1:15001/"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q; want %q", strings.Join(got, " "), want)
	}
	if got, _ := lifecycleArgs("name=init"); got[len(got)-1] != "--addr=" {
		t.Errorf("got %q; want the endpoints off (--addr=) without a port", got)
	}
	if _, err := lifecycleArgs("colour=blue"); err == nil {
		t.Error("got no error for an unknown option; want one")
	}
}
