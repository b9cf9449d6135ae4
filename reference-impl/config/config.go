package config

import (
	"bytes"
	"embed"
	"fmt"
)

//go:embed 00-namespace.yaml 10-rbac.yaml 20-controller.yaml 30-gatewayclass.yaml
var files embed.FS

// Files are the manifest file names in apply order: the GatewayClass last, since it needs the
// Gateway API CRDs and is only useful once the controller runs.
var Files = []string{"00-namespace.yaml", "10-rbac.yaml", "20-controller.yaml", "30-gatewayclass.yaml"}

const (
	// Namespace the controller runs in.
	Namespace = "gatecheck-system"
	// GatewayClassName is the GatewayClass the manifests create.
	GatewayClassName = "gatecheck-reference"
	// ControllerName is that GatewayClass's controllerName.
	ControllerName = "gatecheck.dev/reference"
	// ControllerImage and ProxyImage are the images the manifests reference.
	ControllerImage = "gatecheck.dev/reference-controller:dev"
	ProxyImage      = "gatecheck.dev/reference-proxy:dev"
	// DeploymentName is the controller Deployment, for readiness waits.
	DeploymentName = "gatecheck-reference-controller"
)

// Manifests returns every manifest as one multi-document YAML stream, in apply order.
func Manifests() ([]byte, error) {
	var b bytes.Buffer
	for _, f := range Files {
		data, err := files.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read embedded manifest %s: %w", f, err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}
