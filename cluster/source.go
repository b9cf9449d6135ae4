package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/gatecheck/gatecheck"
	"github.com/gatecheck/gatecheck/internal/command"
)

// modulePath is gatecheck's module.
const modulePath = "github.com/gatecheck/gatecheck"

// FilesRoot is a directory laid out like the module that holds the profiles, the manifests they
// install and kind-config.yaml: the checkout at or above the working directory when there is
// one (so edits there take effect), else the copy carried in this binary, written once per
// content under CacheDir()/files.
func FilesRoot() (string, error) {
	if root, err := ModuleRoot(""); err == nil {
		return root, nil
	}
	return extractFiles(gatecheck.Files, filepath.Join(CacheDir(), "files"))
}

// extractFiles writes fsys under base/<content hash> unless it is there already, and returns
// that directory. The hash names the content, so two gatecheck versions never share a copy and
// a half-written copy (renamed into place only when complete) is never used.
func extractFiles(fsys fs.FS, base string) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("bundled files: %w", err)
	}
	dir := filepath.Join(base, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("bundled files: %w", err)
	}
	tmp, err := os.MkdirTemp(base, ".partial-")
	if err != nil {
		return "", fmt.Errorf("bundled files: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(tmp, fsys); err != nil {
		return "", fmt.Errorf("bundled files: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, serr := os.Stat(dir); serr != nil { // not a concurrent writer's finished copy
			return "", fmt.Errorf("bundled files: %w", err)
		}
	}
	return dir, nil
}

// SourceRoot is gatecheck's Go source, which the image builder compiles: the checkout at or
// above the working directory, else the module this binary was built from, found in the Go
// module cache (`go install github.com/gatecheck/gatecheck/cmd/gatecheck@VERSION` put it
// there). It needs the go command; an error says what to do.
func SourceRoot(ctx context.Context) (string, error) {
	if root, err := ModuleRoot(""); err == nil {
		return root, nil
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path != modulePath || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return "", fmt.Errorf("building gatecheck's images needs its source: run from a gatecheck checkout, or use a gatecheck installed with `go install %s/cmd/gatecheck@VERSION` (this binary's module version is %q)", modulePath, mainVersion(bi, ok))
	}
	return moduleCacheDir(ctx, bi.Main.Path+"@"+bi.Main.Version)
}

func mainVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "unknown"
	}
	return bi.Main.Version
}

// moduleCacheDir downloads (if needed) module@version into the Go module cache and returns its
// directory.
func moduleCacheDir(ctx context.Context, modVersion string) (string, error) {
	out, err := command.Output(ctx, "go", "mod", "download", "-json", modVersion)
	if err != nil {
		return "", fmt.Errorf("find gatecheck's source in the Go module cache: %w", err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go mod download -json %s: %w", modVersion, err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, m.Error)
	}
	return m.Dir, nil
}
