package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestImageLayout(t *testing.T) {
	t.Parallel()
	s := Spec{Name: "echo-basic", Tags: EchoBasicTags, Binary: "/echo-basic", User: "65532:65532"}
	img, err := Image(s, []byte("\x7fELF fake"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/echo-basic"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if cf.Config.User != "65532:65532" || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("user, os, arch = %q, %q, %q; want 65532:65532, linux, amd64", cf.Config.User, cf.OS, cf.Architecture)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("layers = %d; want 1", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "echo-basic" && h.Mode != 0o755 {
			t.Errorf("binary mode = %o; want 755", h.Mode)
		}
	}
	for _, want := range []string{"echo-basic", "etc/passwd", "tmp/"} {
		if !slices.Contains(names, want) {
			t.Errorf("layer entries %v lack %s", names, want)
		}
	}

	again, _ := Image(s, []byte("\x7fELF fake"), "amd64")
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("digests differ for the same binary: %s vs %s; want reproducible", d1, d2)
	}
}

func TestImageRejectsMissingFields(t *testing.T) {
	t.Parallel()
	if _, err := Image(Spec{Name: "x"}, nil, "amd64"); err == nil || !strings.Contains(err.Error(), "Tags") {
		t.Errorf("got %v; want an error naming Tags", err)
	}
}

func TestDefaultSetCoversUpstreamEchoBasicTags(t *testing.T) {
	t.Parallel()
	// Every echo-basic image named by the pinned conformance suite's manifests must be in the set.
	root := conformanceDir(t)
	files, _ := filepath.Glob(filepath.Join(root, "tests", "*.yaml"))
	files = append(files, filepath.Join(root, "base", "manifests.yaml"))
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "image:") && strings.Contains(line, "echo-basic") {
				seen[strings.TrimSpace(strings.TrimPrefix(line, "image:"))] = true
			}
		}
	}
	var upstream []string
	for k := range seen {
		upstream = append(upstream, k)
	}
	sort.Strings(upstream)
	var ours []string
	for _, s := range Default() {
		if s.Name == "echo-basic" {
			ours = append(ours, s.Tags...)
		}
	}
	sort.Strings(ours)
	if diff := cmp.Diff(upstream, ours); diff != "" {
		t.Errorf("echo-basic tags (-upstream manifests +ours):\n%s", diff)
	}
}

func conformanceDir(t *testing.T) string {
	t.Helper()
	root := moduleRoot(t)
	out, err := runGo(root, "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api/conformance")
	if err != nil {
		t.Skipf("conformance module not available: %v", err)
	}
	return strings.TrimSpace(out)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func runGo(dir string, args ...string) (string, error) {
	out, err := (&goRunner{dir}).run(args...)
	return out, err
}

type goRunner struct{ dir string }

func (g *goRunner) run(args ...string) (string, error) {
	b, err := outputGo(context.Background(), g.dir, args...)
	return string(b), err
}

// TestBuildPauseAndSkip builds the real pause image (a tiny main package) into an archive,
// reads the archive back by tag, and checks a missing package is skipped, not fatal.
func TestBuildPauseAndSkip(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel()
	out := t.TempDir()
	b := Builder{ModuleRoot: moduleRoot(t), OutDir: out}
	specs := []Spec{Pause(), {Name: "not-yet", Packages: []string{"./does/not/exist"}, Tags: []string{"gatecheck.dev/not-yet:dev"}}}
	built, err := b.Build(context.Background(), specs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(built) != 1 || built[0].Spec.Name != "pause" {
		t.Fatalf("built = %+v; want only pause", built)
	}
	tag, _ := name.NewTag(PauseImage)
	img, err := tarball.ImageFromPath(built[0].Archive, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", PauseImage, err)
	}
	cf, _ := img.ConfigFile()
	if diff := cmp.Diff([]string{"/pause"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("pause entrypoint (-want +got):\n%s", diff)
	}

	_, err = b.Build(context.Background(), []Spec{{Name: "needed", Packages: []string{"./does/not/exist"}, Tags: []string{"x/y:z"}, Required: true}})
	if err == nil || !strings.Contains(err.Error(), "needed") {
		t.Errorf("required missing package: got %v; want an error naming the image", err)
	}
}

func TestCoreDNSTagMatchesUpstreamBase(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(conformanceDir(t), "base", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := "registry.k8s.io/coredns/coredns:" + CoreDNSVersion
	if !strings.Contains(string(data), "image: "+want) {
		t.Errorf("base/manifests.yaml does not use %s; update CoreDNSVersion", want)
	}
}

// TestBuildIsCachedByContent: a second build of unchanged source compiles nothing and reuses
// the archive; a changed source file gives a new archive and the old one is removed.
func TestBuildIsCachedByContent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel()
	mod := t.TempDir()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(mod, "main.go"), []byte("package main\n\nfunc main() { println(\""+body+"\") }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/tiny\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("one")
	var logs strings.Builder
	b := Builder{ModuleRoot: mod, OutDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	spec := []Spec{{Name: "tiny", Packages: []string{"."}, Tags: []string{"gatecheck.dev/tiny:dev"}, Required: true}}
	first, err := b.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	st1, err := os.Stat(first[0].Archive)
	if err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	second, err := b.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(second[0].Archive)
	if second[0].Archive != first[0].Archive || !st2.ModTime().Equal(st1.ModTime()) || strings.Contains(logs.String(), "compiling") {
		t.Errorf("unchanged source rebuilt: archive %s -> %s; log:\n%s", first[0].Archive, second[0].Archive, logs.String())
	}
	write("two")
	third, err := b.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Archive == first[0].Archive {
		t.Errorf("changed source kept archive %s", first[0].Archive)
	}
	if _, err := os.Stat(first[0].Archive); err == nil {
		t.Errorf("old archive %s left behind", first[0].Archive)
	}
}
