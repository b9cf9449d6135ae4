package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CoreDNSVersion is the CoreDNS tag the pinned conformance suite's base manifests use.
const CoreDNSVersion = "v1.12.2"

// CoreDNSModule is CoreDNS's module path.
const CoreDNSModule = "github.com/coredns/coredns"

// coreDNSPlugins are the plugins the slim CoreDNS carries: what the upstream suite's Corefile
// (base/manifests.yaml: `forward`, `log`, `errors`; `whoami` for foo.bar.com) uses, plus
// `health` and `ready` for probes. CoreDNS links every plugin it ships by default (the cloud
// DNS SDKs among them): about 3.5 CPU-minutes to compile from empty Go caches on 2 cores,
// against under one minute for these. A Corefile naming another plugin fails at start with
// CoreDNS's own "unknown directive" error.
var coreDNSPlugins = []string{"errors", "forward", "health", "log", "ready", "whoami"}

// CoreDNS is the CoreDNS image the upstream base manifests run (for the UDP tests; the suite
// waits for every base Pod to be Ready), built from the module proxy with only coreDNSPlugins.
func CoreDNS() Spec {
	return Spec{
		Name:     "coredns",
		Packages: []string{CoreDNSModule + "@" + CoreDNSVersion},
		Tags:     []string{"registry.k8s.io/coredns/coredns:" + CoreDNSVersion},
		Binary:   "/coredns",
		Source: &ModuleSource{
			Module:  CoreDNSModule,
			LDFlags: "-X " + CoreDNSModule + "/coremain.GitCommit=gatecheck-slim",
			Edit:    editCoreDNS,
			// The cache key: a binary built with another plugin set is another tool.
			Variant: "slim-" + strings.Join(coreDNSPlugins, "-"),
		},
	}
}

// editCoreDNS replaces core/plugin/zplugin.go, the generated file that imports every plugin
// for registration, with one importing coreDNSPlugins only.
func editCoreDNS(_ context.Context, src, _ string, _ []string) error {
	gen := filepath.Join(src, "core", "plugin", "zplugin.go")
	if _, err := os.Stat(gen); err != nil {
		return fmt.Errorf("CoreDNS plugin registry: %w", err)
	}
	return os.WriteFile(gen, []byte(coreDNSRegistry(coreDNSPlugins)), 0o644)
}

func coreDNSRegistry(plugins []string) string {
	var b strings.Builder
	b.WriteString("// Written by gatecheck (cluster/images/coredns.go) in place of CoreDNS's generated list.\n\npackage plugin\n\nimport (\n")
	for _, p := range plugins {
		fmt.Fprintf(&b, "\t_ %q\n", CoreDNSModule+"/plugin/"+p)
	}
	b.WriteString(")\n")
	return b.String()
}
