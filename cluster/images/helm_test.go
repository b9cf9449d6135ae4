package images

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// writeExe writes an executable shell script.
func writeExe(t *testing.T, path, script string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// HelmCLI prefers a helm v3 or v4 on PATH, and otherwise (helm v2, no helm, or bundled) uses
// the one cached under cacheDir/tools/helm/<HelmVersion> (built there when missing).
func TestHelmCLIChoosesPathOrBundled(t *testing.T) {
	cache := t.TempDir()
	bundled := filepath.Join(cache, "tools", "helm", HelmVersion, "helm")
	writeExe(t, bundled, "echo "+HelmVersion+"\n")
	pathDir := t.TempDir()
	onPath := filepath.Join(pathDir, "helm")
	ctx := context.Background()
	for _, tc := range []struct {
		name, version string // "" version: no helm on PATH
		bundled       bool
		want          string
	}{
		{"helm v3 on PATH", "v3.19.0+g3d8990f", false, onPath},
		{"helm v4 on PATH", "v4.2.1+gabc", false, onPath},
		{"bundled asked for", "v4.2.1+gabc", true, bundled},
		{"helm v2 on PATH", "Client: v2.17.0+ga690bad", false, bundled},
		{"no helm on PATH", "", false, bundled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(onPath)
			if tc.version != "" {
				writeExe(t, onPath, "echo '"+tc.version+"'\n")
			}
			t.Setenv("PATH", pathDir+string(os.PathListSeparator)+"/usr/bin:/bin")
			got, err := HelmCLI(ctx, cache, tc.bundled, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("HelmCLI = %s; want %s", got, tc.want)
			}
		})
	}
}
