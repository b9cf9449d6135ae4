package images

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/gatecheck/gatecheck/internal/command"
)

// HelmVersion is the helm CLI gatecheck builds when there is none on PATH, or when a profile
// asks for it (install.helm.bundled).
const HelmVersion = "v4.3.2"

// HelmPackage is its main package on the Go module proxy.
const HelmPackage = "helm.sh/helm/v4/cmd/helm"

// HelmCLI returns the helm to run: the helm v3 or v4 on PATH unless bundled is set, else helm
// HelmVersion built with `go install` from the Go module proxy into
// cacheDir/tools/helm/<version>/helm, once (about 6 minutes on 2 cores; later calls find it).
func HelmCLI(ctx context.Context, cacheDir string, bundled bool, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !bundled {
		if path, err := exec.LookPath("helm"); err == nil {
			out, err := command.Output(ctx, path, "version", "--short")
			v := strings.TrimSpace(string(out))
			if err == nil && (strings.HasPrefix(v, "v3.") || strings.HasPrefix(v, "v4.")) {
				log.Info("helm from PATH", "path", path, "version", v)
				return path, nil
			}
			log.Info("helm on PATH is not helm v3 or v4; using gatecheck's own", "path", path, "version", v, "error", err, "want", HelmVersion)
		}
	}
	b := Builder{OutDir: cacheDir, Logger: log}
	// The version stamp of helm's own release build (its Makefile), so `helm version` says
	// HelmVersion rather than the source's default "v4.3".
	spec := Spec{Name: "helm", LDFlags: []string{"-X helm.sh/helm/v4/internal/version.version=" + HelmVersion}}
	bin, err := b.installTool(ctx, spec, HelmPackage+"@"+HelmVersion, []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local"})
	if err != nil {
		if _, lerr := exec.LookPath("go"); lerr != nil {
			return "", fmt.Errorf("helm: none on PATH, and no Go toolchain to build helm %s from the module proxy: install helm v3 or v4, or Go", HelmVersion)
		}
		return "", fmt.Errorf("helm %s: %w", HelmVersion, err)
	}
	return bin, nil
}
