package zzscratch

import (
	"fmt"
	"os"
	"testing"

	"sigs.k8s.io/yaml"

	mirror "github.com/gatecheck/gatecheck/fixtures/mirror"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

func TestDump(t *testing.T) {
	objs, err := gwtest.Render(mirror.Files, "suite.yaml", map[string]any{"Namespace": os.Getenv("NS"), "GatewayClass": "x", "EchoImage": "gatecheck.dev/echo-backend:dev", "PullPolicy": "IfNotPresent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range gwtest.Without(objs, "Gateway") {
		b, _ := yaml.Marshal(o.Obj.Object)
		fmt.Printf("---\n%s", b)
	}
}
