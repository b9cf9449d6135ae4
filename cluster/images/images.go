package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/gatecheck/gatecheck/internal/command"
)

// Spec is one image to build.
type Spec struct {
	// Name is the short name: the archive is <Name>.tar and the binary /<Name> by default.
	Name string
	// Packages are candidate Go main packages, relative to the module root ("./echo-backend")
	// or import paths from the module cache; the first that exists is built. Several
	// candidates let a layout settle without editing this list.
	Packages []string
	// Tags are the full references the image is tagged with.
	Tags []string
	// Binary is the path of the binary inside the image; default "/"+Name.
	Binary string
	// User is the image's default user ("65532:65532"); default root.
	User string
	// Required makes a missing package an error instead of a skip.
	Required bool
}

// CoreDNSVersion is the CoreDNS tag the pinned conformance suite's base manifests use.
const CoreDNSVersion = "v1.12.2"

// Well-known references.
const (
	PauseImage       = "gatecheck.dev/pause:v1"
	EchoBackendImage = "gatecheck.dev/echo-backend:dev"
	ControllerImage  = "gatecheck.dev/reference-controller:dev"
	ProxyImage       = "gatecheck.dev/reference-proxy:dev"
)

// EchoBasicTags are every echo-basic reference in the pinned conformance suite's
// base/manifests.yaml and tests/*.yaml (v1.6.3), so its pods run without a registry.
var EchoBasicTags = []string{
	"registry.k8s.io/gateway-api/echo-basic:v1.5.1",
	"registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.2",
	"registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.3",
}

// Pause is the sandbox image of the host cluster.
func Pause() Spec {
	return Spec{Name: "pause", Packages: []string{"./cluster/internal/pause"}, Tags: []string{PauseImage}, Required: true}
}

// Default is the image set gatecheck loads into a cluster.
func Default() []Spec {
	return []Spec{
		{Name: "echo-backend", Packages: []string{"./echo-backend", "./echo-backend/cmd/echo-backend"}, Tags: []string{EchoBackendImage}},
		{Name: "controller", Packages: []string{"./reference-impl/cmd/controller"}, Tags: []string{ControllerImage}},
		{Name: "proxy", Packages: []string{"./reference-impl/cmd/proxy"}, Tags: []string{ProxyImage}},
		// Upstream's Dockerfile: distroless static, /echo-basic, user nonroot.
		{Name: "echo-basic", Packages: []string{"sigs.k8s.io/gateway-api/conformance/echo-basic"}, Tags: EchoBasicTags, Binary: "/echo-basic", User: "65532:65532"},
		// The upstream base manifests run CoreDNS (for the UDP tests) and the suite waits for
		// every base Pod to be Ready, so a real CoreDNS of the pinned tag must be loadable.
		{Name: "coredns", Packages: []string{"github.com/coredns/coredns@" + CoreDNSVersion}, Tags: []string{"registry.k8s.io/coredns/coredns:" + CoreDNSVersion}, Binary: "/coredns"},
	}
}

// Builder builds Specs.
type Builder struct {
	// ModuleRoot is the gatecheck checkout (where go.mod is); go build runs there.
	ModuleRoot string
	// OutDir receives <Name>.tar archives.
	OutDir string
	// Logger gets a line per image built or skipped.
	Logger *slog.Logger
	// GOARCH of the images; default runtime.GOARCH.
	GOARCH string
}

// Built is one archive written.
type Built struct {
	Spec    Spec
	Package string
	Archive string
}

// Build builds every spec whose package exists and returns the archives; a non-required
// spec whose packages are all missing is skipped with a log line saying which.
func (b Builder) Build(ctx context.Context, specs []Spec) ([]Built, error) {
	if b.ModuleRoot == "" || b.OutDir == "" {
		return nil, errors.New("image builder: fields ModuleRoot and OutDir are required")
	}
	if err := os.MkdirAll(b.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create image dir: %w", err)
	}
	log := b.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []Built
	for _, s := range specs {
		start := time.Now()
		pkg, err := b.resolve(ctx, s)
		if err != nil {
			return out, err
		}
		if pkg == "" {
			log.Info("skipping image: its main package does not exist yet", "image", s.Name, "looked for", strings.Join(s.Packages, ", "))
			continue
		}
		archive := filepath.Join(b.OutDir, s.Name+".tar")
		if err := b.buildOne(ctx, s, pkg, archive); err != nil {
			return out, err
		}
		log.Info("built image", "image", s.Name, "package", pkg, "tags", strings.Join(s.Tags, ","), "archive", archive, "took", time.Since(start).Round(time.Millisecond))
		out = append(out, Built{Spec: s, Package: pkg, Archive: archive})
	}
	return out, nil
}

// resolve returns the first candidate package that is a main package, or "" when none is.
func (b Builder) resolve(ctx context.Context, s Spec) (string, error) {
	var errs []error
	for _, p := range s.Packages {
		if strings.Contains(p, "@") {
			// module@version: built with `go install` in module mode, outside our go.mod.
			return p, nil
		}
		if strings.HasPrefix(p, "./") {
			matches, _ := filepath.Glob(filepath.Join(b.ModuleRoot, p, "*.go"))
			if len(matches) == 0 {
				errs = append(errs, fmt.Errorf("%s: no Go files", p))
				continue
			}
		}
		out, err := command.OutputEnv(ctx, nil, "go", "-C", b.ModuleRoot, "list", "-f", "{{.Name}}", p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.TrimSpace(string(out)) == "main" {
			return p, nil
		}
		errs = append(errs, fmt.Errorf("%s: package %s, not main", p, strings.TrimSpace(string(out))))
	}
	if s.Required {
		return "", fmt.Errorf("image %s: no main package among %v: %w", s.Name, s.Packages, errors.Join(errs...))
	}
	return "", nil
}

func (b Builder) arch() string {
	if b.GOARCH != "" {
		return b.GOARCH
	}
	return runtime.GOARCH
}

func (b Builder) buildOne(ctx context.Context, s Spec, pkg, archive string) error {
	tmp, err := os.MkdirTemp("", "gatecheck-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, s.Name)
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + b.arch()}
	if strings.Contains(pkg, "@") {
		if bin, err = b.installTool(ctx, s, pkg, env); err != nil {
			return err
		}
	} else if _, err := command.OutputEnv(ctx, env, "go", "-C", b.ModuleRoot, "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin, pkg); err != nil {
		return fmt.Errorf("image %s: build %s: %w", s.Name, pkg, err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	img, err := Image(s, data, b.arch())
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range s.Tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return fmt.Errorf("image %s: field Tags: %w", s.Name, err)
		}
		refs[tag] = img
	}
	// Write then rename, so a loader never reads half an archive.
	part := archive + ".part"
	if err := tarball.MultiRefWriteToFile(part, refs); err != nil {
		return fmt.Errorf("image %s: write %s: %w", s.Name, archive, err)
	}
	return os.Rename(part, archive)
}

// installTool builds a module@version main package with `go install` (its own go.mod and
// replace directives apply, not ours) into a per-version cache, once: a large third-party
// binary such as CoreDNS takes minutes the first time.
func (b Builder) installTool(ctx context.Context, s Spec, pkg string, env []string) (string, error) {
	path, ver, _ := strings.Cut(pkg, "@")
	dir := filepath.Join(b.OutDir, "tools", s.Name, ver)
	bin := filepath.Join(dir, filepath.Base(path))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	log := b.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("building from the Go module proxy (first time only; CoreDNS takes ~3-4 min on 2 cores)", "image", s.Name, "module", pkg, "cache", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	env = append(env, "GOBIN="+dir, "GOFLAGS=-mod=mod")
	if _, err := command.OutputEnv(ctx, env, "go", "install", "-trimpath", "-ldflags=-s -w -buildid=", pkg); err != nil {
		return "", fmt.Errorf("image %s: go install %s: %w", s.Name, pkg, err)
	}
	return bin, nil
}

// passwd gives the nonroot user of distroless images a name.
const passwd = "root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
const group = "root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n"

// Image assembles one image: an empty base plus one layer holding the binary, /etc/passwd,
// /etc/group and /tmp, with the binary as entrypoint. Timestamps are zero so the same
// binary gives the same digest.
func Image(s Spec, binary []byte, arch string) (v1.Image, error) {
	if s.Name == "" || len(s.Tags) == 0 {
		return nil, fmt.Errorf("image spec %q: fields Name and Tags are required", s.Name)
	}
	path := s.Binary
	if path == "" {
		path = "/" + s.Name
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := []struct {
		name string
		mode int64
	}{{"etc/", 0o755}, {"tmp/", 0o1777}, {"home/", 0o755}, {"home/nonroot/", 0o700}}
	for _, d := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch}
		if d.name == "home/nonroot/" {
			h.Uid, h.Gid = 65532, 65532
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{{"etc/passwd", 0o644, []byte(passwd)}, {"etc/group", 0o644, []byte(group)}, {strings.TrimPrefix(path, "/"), 0o755, binary}}
	for _, f := range files {
		if dir := filepath.Dir(f.name); dir != "." && dir != "etc" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", s.Name, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Entrypoint = []string{path}
	cf.Config.Env = []string{"PATH=/"}
	cf.Config.User = s.User
	cf.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cf)
}
