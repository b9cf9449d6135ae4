// Package version holds gatecheck's build identity, stamped by the Makefile with -ldflags.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set by `-ldflags -X github.com/gatecheck/gatecheck/internal/version.Version=...`.
var Version = "v0.0.0-dev"

// GatewayAPIVersion is the Gateway API bundle (CRDs and conformance suite) gatecheck pins.
const GatewayAPIVersion = "v1.6.3"

// String is the one-line identity `gatecheck version` prints.
func String() string {
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return fmt.Sprintf("gatecheck %s (commit %s, gateway-api %s, %s %s/%s)",
		Version, commit, GatewayAPIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
