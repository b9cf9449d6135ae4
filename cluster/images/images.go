package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/gatecheck/gatecheck/internal/wait"
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
	// Home makes the image's HOME and working directory this (an existing directory such as
	// /home/nonroot); default "/" and no HOME.
	Home string
	// Required makes a missing package an error instead of a skip.
	Required bool
	// Source, for a module@version package, builds it in an edited copy of its module source
	// instead of with `go install` (traefik.go); nil for most.
	Source *ModuleSource
	// LDFlags are extra -ldflags of a module@version `go install`, such as the -X version
	// stamps of the module's own release build (helm.go).
	LDFlags []string
}

// Well-known references.
const (
	PauseImage       = "gatecheck.dev/pause:v1"
	EchoBackendImage = "gatecheck.dev/echo-backend:dev"
	ControllerImage  = "gatecheck.dev/reference-controller:dev"
	ProxyImage       = "gatecheck.dev/reference-proxy:dev"
	GatecheckImage   = "gatecheck.dev/gatecheck:dev"
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
		CoreDNS(),
	}
}

// Gatecheck is gatecheck itself as an image, for CI systems that run containers (make image):
// it runs against a mounted kubeconfig with --cluster existing and carries its suites and
// profiles. It is never loaded into a cluster.
func Gatecheck() Spec {
	return Spec{Name: "gatecheck", Packages: []string{"./cmd/gatecheck"}, Tags: []string{GatecheckImage}, User: "65532:65532", Home: "/home/nonroot"}
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
//
// Compile once, and only what changed: each image's archive is named by a fingerprint of
// everything its binary is built from (the Go version, the target, every dependency's module
// version, and the content of every file of this module it compiles), so a second run with
// nothing changed builds nothing; the images that must be built come from one `go build`
// invocation, so packages they share are compiled once.
func (b Builder) Build(ctx context.Context, specs []Spec) ([]Built, error) {
	if b.ModuleRoot == "" || b.OutDir == "" {
		return nil, errors.New("image builder: fields ModuleRoot and OutDir are required")
	}
	if err := os.MkdirAll(b.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create image dir: %w", err)
	}
	log := b.log()
	type job struct {
		Built
		key string
	}
	var jobs []*job
	var local []*job // built from this module's go.mod, in one go build
	for _, s := range specs {
		pkg, err := b.resolve(ctx, s)
		if err != nil {
			return nil, err
		}
		if pkg == "" {
			log.Info("skipping image: its main package does not exist yet", "image", s.Name, "looked for", strings.Join(s.Packages, ", "))
			continue
		}
		j := &job{Built: Built{Spec: s, Package: pkg}}
		jobs = append(jobs, j)
		if strings.Contains(pkg, "@") {
			j.Archive = filepath.Join(b.OutDir, s.Name+".tar")
			continue
		}
		if j.key, err = b.fingerprint(ctx, s, pkg); err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		j.Archive = filepath.Join(b.OutDir, s.Name+"-"+j.key+".tar")
		if _, err := os.Stat(j.Archive); err == nil {
			log.Info("image up to date", "image", s.Name, "archive", j.Archive)
			continue
		}
		local = append(local, j)
	}
	if len(local) > 0 {
		tmp, err := os.MkdirTemp("", "gatecheck-images-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		var pkgs, names []string
		for _, j := range local {
			pkgs, names = append(pkgs, j.Package), append(names, j.Spec.Name)
		}
		start := time.Now()
		log.Info("compiling image binaries (one go build)", "images", strings.Join(names, ","))
		argv := append([]string{"go", "-C", b.ModuleRoot, "build", "-trimpath", NoDWARF, "-ldflags=-s -w -buildid=", "-o", tmp + string(filepath.Separator)}, pkgs...)
		stop := wait.Progress("compiling "+strings.Join(names, ", ")+" (cold Go caches take minutes)", 30*time.Second, func(l string) { log.Info(l) })
		_, err = command.OutputEnv(ctx, b.env(), argv...)
		stop()
		if err != nil {
			return nil, fmt.Errorf("images %s: %w", strings.Join(names, ", "), err)
		}
		log.Info("compiled image binaries", "took", time.Since(start).Round(100*time.Millisecond))
		for _, j := range local {
			bin := filepath.Join(tmp, binaryName(j.Package))
			if err := b.writeArchive(j.Spec, bin, j.Archive); err != nil {
				return nil, err
			}
			b.pruneOld(j.Spec.Name, j.Archive)
		}
	}
	out := make([]Built, 0, len(jobs))
	for _, j := range jobs {
		if strings.Contains(j.Package, "@") {
			bin, err := b.installTool(ctx, j.Spec, j.Package, b.env())
			if err != nil {
				return out, err
			}
			if err := b.writeArchive(j.Spec, bin, j.Archive); err != nil {
				return out, err
			}
		}
		log.Info("image", "image", j.Spec.Name, "package", j.Package, "tags", strings.Join(j.Spec.Tags, ","), "archive", j.Archive)
		out = append(out, j.Built)
	}
	return out, nil
}

// binaryName is the file `go build -o DIR/` writes for the main package importPath: its last
// element, or the one before a major-version suffix (example.com/cmd/v2 -> cmd).
func binaryName(importPath string) string {
	elems := strings.Split(importPath, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		return elems[len(elems)-2]
	}
	return last
}

func (b Builder) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// NoDWARF is a go build flag of every binary gatecheck builds: the images and the tools built
// from the module proxy (here), gatecheck itself (Makefile) and the host binaries
// (hack/build-host-binaries.sh). Their links pass -w, which drops DWARF from the binary; this
// spares the compiler making it in the first place, about a tenth of a cold build's compile
// time (client-go and the apiextensions clientset, empty GOCACHE, 2 cores: 113 s with DWARF,
// 103 s without). The Makefile's build of gatecheck must pass the same flags as the images'
// build, or the packages they share compile twice.
const NoDWARF = "-gcflags=all=-dwarf=false"

// env is the build environment of image binaries: static, Linux, the images' architecture.
func (b Builder) env() []string {
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + b.arch()}
}

// fingerprint names everything pkg's binary and s's image are built from. Dependencies outside
// this module are named by module@version (the module cache is immutable); packages of this
// module (and of replaced modules, which have no version) by the content of their files.
func (b Builder) fingerprint(ctx context.Context, s Spec, pkg string) (string, error) {
	const format = `{{if not .Standard}}{{.ImportPath}}|{{with .Module}}{{.Path}}@{{.Version}}{{with .Replace}}=>{{.Path}}@{{.Version}}{{end}}{{end}}|{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}|{{join .SFiles ","}}{{end}}`
	out, err := command.OutputEnv(ctx, b.env(), "go", "-C", b.ModuleRoot, "list", "-deps", "-f", format, pkg)
	if err != nil {
		return "", fmt.Errorf("list dependencies of %s: %w", pkg, err)
	}
	ver, err := command.Output(ctx, "go", "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "v1\n%s%s %s\n%s|%s|%s|%s|%s\n", ver, strings.Join(b.env(), " "), NoDWARF, s.Name, strings.Join(s.Tags, ","), s.Binary, s.User, s.Home)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 6 {
			continue // a standard-library package: the Go version covers it
		}
		fmt.Fprintln(h, f[0], f[1])
		mod := f[1]
		if mod != "" && !strings.HasSuffix(mod, "@") && !strings.Contains(mod, "=>") {
			continue // a released module version: its content is fixed
		}
		for _, list := range f[3:] {
			for _, name := range strings.Split(list, ",") {
				if name == "" {
					continue
				}
				data, err := os.ReadFile(filepath.Join(f[2], name))
				if err != nil {
					return "", fmt.Errorf("fingerprint %s: %w", pkg, err)
				}
				fmt.Fprintf(h, "%s %d\n", name, len(data))
				h.Write(data)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// pruneOld removes the archives of earlier builds of the image named name.
func (b Builder) pruneOld(name, keep string) {
	old, _ := filepath.Glob(filepath.Join(b.OutDir, name+"-*.tar"))
	for _, o := range old {
		if o != keep && len(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(o), name+"-"), ".tar")) == 16 {
			_ = os.Remove(o)
		}
	}
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
		out, err := command.OutputEnv(ctx, nil, "go", "-C", b.ModuleRoot, "list", "-f", "{{.Name}} {{.ImportPath}}", p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pkgName, importPath, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		if pkgName == "main" {
			return importPath, nil
		}
		errs = append(errs, fmt.Errorf("%s: package %s, not main", p, pkgName))
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

// writeArchive writes the image of s around the binary at bin to archive.
func (b Builder) writeArchive(s Spec, bin, archive string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("image %s: %w", s.Name, err)
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
	if s.Source != nil && s.Source.Variant != "" {
		dir += "-" + s.Source.Variant
	}
	bin := filepath.Join(dir, filepath.Base(path))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	log := b.log()
	log.Info("building from the Go module proxy (first time only; CoreDNS takes ~1 min on 2 cores, Traefik ~10)", "image", s.Name, "module", pkg, "cache", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if s.Source != nil {
		return bin, b.buildFromSource(ctx, s, pkg, bin, env)
	}
	env = append(env, "GOBIN="+dir, "GOFLAGS=-mod=mod")
	stop := wait.Progress("building "+pkg, 30*time.Second, func(l string) { log.Info(l) })
	_, err := command.OutputEnv(ctx, env, "go", "install", "-trimpath", NoDWARF, strings.Join(append([]string{"-ldflags=-s -w -buildid="}, s.LDFlags...), " "), pkg)
	stop()
	if err != nil {
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
	if s.Home != "" {
		cf.Config.Env = append(cf.Config.Env, "HOME="+s.Home)
		cf.Config.WorkingDir = s.Home
	}
	return mutate.ConfigFile(img, cf)
}
