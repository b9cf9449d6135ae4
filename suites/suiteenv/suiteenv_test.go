package suiteenv

import (
	"strings"
	"testing"
)

func TestLoadRoundTrip(t *testing.T) {
	t.Parallel()
	in := Config{Kubeconfig: "/k", GatewayClass: "gc", Impl: "x", ReachMode: "nodeport", Artifacts: "/a", EchoImage: "e",
		Features: []string{"A", "B"}, Alpha: 1e-3, Scale: 0.5, SpecTimeout: 90e9, TolerancePts: 2,
		ReachServiceNamespace: "eg-system", ReachServiceSelector: "owner={name},owner-ns={namespace}", ImagesPulled: true}
	env := map[string]string{}
	for _, kv := range in.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	got, err := load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got.GatewayClass != "gc" || got.Alpha != 1e-3 || got.Scale != 0.5 || got.SpecTimeout != in.SpecTimeout || len(got.Features) != 2 || got.ReachMode != "nodeport" ||
		got.ReachServiceNamespace != in.ReachServiceNamespace || got.ReachServiceSelector != in.ReachServiceSelector || !got.ImagesPulled {
		t.Fatalf("round trip = %+v; want %+v", got, in)
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvAlpha: "abc", EnvReachMode: "teleport", EnvTimeout: "-1s", EnvImagesPulled: "yes"}
	_, err := load(func(k string) string { return env[k] })
	for _, want := range []string{`GATECHECK_ALPHA="abc"`, `GATECHECK_REACH_MODE="teleport"`, `GATECHECK_SPEC_TIMEOUT="-1s"`, `GATECHECK_IMAGES_PULLED="yes"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load() = %v; want error containing %s", err, want)
		}
	}
}
