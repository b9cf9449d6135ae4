package impls

import (
	"testing"
)

func TestTraefikProfileLoads(t *testing.T) {
	t.Parallel()
	p, err := Find("..", "traefik")
	if err != nil {
		t.Fatal(err)
	}
	if p.GatewayClass.ControllerName != "traefik.io/gateway-controller" || !p.GatewayClass.Create {
		t.Errorf("gatewayClass = %+v; want controller traefik.io/gateway-controller, created by gatecheck", p.GatewayClass)
	}
	if len(p.Images.Build) != 1 || p.Images.Build[0] != "traefik" {
		t.Errorf("images.build = %v; want [traefik]", p.Images.Build)
	}
	files, err := p.ManifestFiles()
	if err != nil || len(files) == 0 {
		t.Errorf("ManifestFiles() = %v, %v; want the install manifests", files, err)
	}
	for _, k := range p.Conformance.KnownFailures {
		if len(k.Reason) < 40 {
			t.Errorf("known failure %s: reason %q says too little", k.Test, k.Reason)
		}
	}
}
