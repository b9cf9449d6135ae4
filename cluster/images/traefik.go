package images

import (
	"context"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/gatecheck/gatecheck/internal/command"
	"github.com/gatecheck/gatecheck/internal/wait"
)

// Traefik Proxy, the third-party implementation impls/traefik judges, built from the Go module
// proxy like CoreDNS. Its module cannot be built with `go install mod@version` here, for three
// reasons (see TraefikSource).
const (
	TraefikVersion = "v3.7.13"
	TraefikModule  = "github.com/traefik/traefik/v3"
	TraefikImage   = "gatecheck.dev/traefik:" + TraefikVersion
	// legoModule is Traefik's ACME library at the version Traefik v3.7.13 requires.
	legoModule  = "github.com/go-acme/lego/v5"
	legoVersion = "v5.4.1"
)

// Traefik is the Traefik image, built on request only (a profile's images.build naming
// "traefik", or `gatecheck images build traefik`): it takes ~10 minutes on 2 cores the first
// time, then comes from CacheDir()/images/tools/traefik/<version>.
func Traefik() Spec {
	return Spec{
		Name:     "traefik",
		Packages: []string{TraefikModule + "/cmd/traefik@" + TraefikVersion},
		Tags:     []string{TraefikImage},
		Source:   TraefikSource(),
	}
}

// OnRequest are the images built only when named: not part of Default(), so neither a cluster's
// default image load nor `gatecheck images build` without names spends minutes on them.
func OnRequest() []Spec { return []Spec{Traefik()} }

// ModuleSource builds a module@version main package in a writable copy of its module source,
// edited first, where `go install mod@version` cannot build it (a local-path replace, a
// dependency the proxy refuses).
type ModuleSource struct {
	// Module is the module whose source is copied; the Spec's package is a path below it.
	Module string
	// Edit changes the copy at src before the build; work is a scratch directory beside it for
	// other modules the edit copies (a trimmed dependency).
	Edit func(ctx context.Context, src, work string, env []string) error
	// LDFlags are linker flags added to "-s -w".
	LDFlags string
	// Variant names what the edit makes of the module (a plugin set), when the module's
	// version alone does not say which binary is cached.
	Variant string
}

// refusedDNSProviders are lego v5.4.1's DNS providers whose SDK modules the module proxy refuses
// (403 on their zips); refusedModules are those SDK modules. Dropping them loses ACME DNS-01
// with these providers, which Gateway API conformance never uses.
var (
	refusedDNSProviders = []string{"alidns", "aliesa", "azion", "dnsimple", "edgedns", "edgeone", "huaweicloud",
		"oraclecloud", "regfish", "sakuracloud", "tencentcloud", "ucloud", "yandexcloud"}
	refusedModules = []string{"github.com/go-acme/alidns-20150109/v5", "github.com/go-acme/esa-20240910/v3",
		"github.com/aziontech/azionapi-go-sdk", "github.com/dnsimple/dnsimple-go/v9",
		"github.com/akamai/AkamaiOPEN-edgegrid-golang/v13", "github.com/go-acme/tencentedgdeone",
		"github.com/huaweicloud/huaweicloud-sdk-go-v3", "github.com/nrdcg/oci-go-sdk/common/v1065",
		"github.com/nrdcg/oci-go-sdk/dns/v1065", "github.com/regfish/regfish-dnsapi-go",
		"github.com/sacloud/sacloud-sdk-go", "github.com/go-acme/tencentclouddnspod",
		"github.com/ucloud/ucloud-sdk-go", "github.com/yandex-cloud/go-sdk/services/dns"}
)

// goHTTPAuthServed is the containous/go-http-auth fork commit the proxy serves; Traefik pins a
// later one (v0.4.1-0.20260804094822-b975dcaa8c48) that it refuses. The package API Traefik's
// auth middlewares use is the same in both.
const goHTTPAuthServed = "v0.4.1-0.20200324110947-a37a7636d23e"

// TraefikSource is how Traefik v3.7.13 builds from the module proxy:
//  1. its go.mod replaces github.com/traefik/traefik/dynamic/ext with ./pkg/config/dynamic/ext,
//     a nested module and so not in the module zip: recreated (two empty extension structs);
//  2. github.com/abbot/go-http-auth goes to the fork commit the proxy serves;
//  3. lego comes from a local copy without the DNS providers whose SDKs the proxy refuses.
func TraefikSource() *ModuleSource {
	return &ModuleSource{
		Module:  TraefikModule,
		LDFlags: "-X " + TraefikModule + "/pkg/version.Version=" + TraefikVersion,
		Edit:    editTraefik,
	}
}

func editTraefik(ctx context.Context, src, work string, env []string) error {
	ext := filepath.Join(src, "pkg", "config", "dynamic", "ext")
	if err := os.MkdirAll(ext, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ext, "go.mod"), []byte("module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ext, "ext.go"), []byte(traefikExt), 0o644); err != nil {
		return err
	}
	lego := filepath.Join(work, "lego")
	if err := copyModule(ctx, legoModule, legoVersion, lego, env); err != nil {
		return err
	}
	gen := filepath.Join(lego, "providers", "dns", "zz_gen_dns_providers.go")
	data, err := os.ReadFile(gen)
	if err != nil {
		return err
	}
	if data, err = dropDNSProviders(data, refusedDNSProviders); err != nil {
		return fmt.Errorf("%s: %w", gen, err)
	}
	if err := os.WriteFile(gen, data, 0o644); err != nil {
		return err
	}
	for _, p := range refusedDNSProviders {
		if err := os.RemoveAll(filepath.Join(lego, "providers", "dns", p)); err != nil {
			return err
		}
	}
	if err := editGoModFile(filepath.Join(lego, "go.mod"), func(f *modfile.File) error { return dropRequires(f, refusedModules) }); err != nil {
		return err
	}
	return editGoModFile(filepath.Join(src, "go.mod"), func(f *modfile.File) error { return editTraefikGoMod(f, lego) })
}

const traefikExt = `package ext

// HTTP is a dynamic.HTTP extension (empty in Traefik Proxy).
type HTTP struct{}

// Router is a dynamic.Router extension (empty in Traefik Proxy).
type Router struct{}
`

// editTraefikGoMod points go-http-auth at the served fork commit and lego at the trimmed copy in
// legoDir, and drops the refused modules; the nested ext module must keep its local replace.
func editTraefikGoMod(f *modfile.File, legoDir string) error {
	if !slices.ContainsFunc(f.Replace, func(r *modfile.Replace) bool {
		return r.Old.Path == "github.com/traefik/traefik/dynamic/ext" && r.New.Path == "./pkg/config/dynamic/ext"
	}) {
		return fmt.Errorf("go.mod of %s %s: no replace of github.com/traefik/traefik/dynamic/ext => ./pkg/config/dynamic/ext (another Traefik version needs other edits)", TraefikModule, TraefikVersion)
	}
	if err := f.AddReplace("github.com/abbot/go-http-auth", "", "github.com/containous/go-http-auth", goHTTPAuthServed); err != nil {
		return err
	}
	if err := f.AddReplace(legoModule, "", legoDir, ""); err != nil {
		return err
	}
	return dropRequires(f, refusedModules)
}

func dropRequires(f *modfile.File, paths []string) error {
	for _, p := range paths {
		if err := f.DropRequire(p); err != nil {
			return err
		}
	}
	return nil
}

func editGoModFile(path string, edit func(*modfile.File) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return fmt.Errorf("edit %s: %w", path, err)
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return fmt.Errorf("format %s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

var (
	providerImport = regexp.MustCompile(`^\s*"github.com/go-acme/lego/v5/providers/dns/([a-z0-9]+)"\s*$`)
	providerReturn = regexp.MustCompile(`^\s*return ([a-z0-9]+)\.`)
)

// dropDNSProviders removes providers from lego's generated provider registry
// (providers/dns/zz_gen_dns_providers.go): their imports and their `case "name":` + `return
// name.New...()` pairs. The result must parse and must not name a dropped package, so a
// regenerated file of another shape fails here rather than in a 10-minute build.
func dropDNSProviders(src []byte, providers []string) ([]byte, error) {
	lines := strings.Split(string(src), "\n")
	out := make([]string, 0, len(lines))
	dropped := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := providerImport.FindStringSubmatch(l); m != nil && slices.Contains(providers, m[1]) {
			dropped[m[1]] = true
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "case ") && i+1 < len(lines) {
			if m := providerReturn.FindStringSubmatch(lines[i+1]); m != nil && slices.Contains(providers, m[1]) {
				i++
				continue
			}
		}
		out = append(out, l)
	}
	res := []byte(strings.Join(out, "\n"))
	var missing []string
	for _, p := range providers {
		if !dropped[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no import of DNS providers %s to drop", strings.Join(missing, ", "))
	}
	f, err := parser.ParseFile(token.NewFileSet(), "zz_gen_dns_providers.go", res, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("after dropping DNS providers: %w", err)
	}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if slices.Contains(providers, filepath.Base(path)) {
			return nil, fmt.Errorf("after dropping DNS providers: still imports %s", path)
		}
	}
	for _, p := range providers {
		if regexp.MustCompile(`\b` + p + `\.`).Match(res) {
			return nil, fmt.Errorf("after dropping DNS providers: still refers to %s.", p)
		}
	}
	return res, nil
}

// copyModule downloads module@version with the go command and copies its source to dst,
// writable (the module cache is read-only).
func copyModule(ctx context.Context, module, version, dst string, env []string) error {
	// Run outside any module (dst's parent has no go.mod) so no go.mod is consulted or edited.
	out, err := command.OutputEnv(ctx, env, "go", "-C", filepath.Dir(dst), "mod", "download", "-json", module+"@"+version)
	if err != nil {
		return fmt.Errorf("download %s@%s: %w", module, version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return fmt.Errorf("download %s@%s: %w", module, version, err)
	}
	if m.Error != "" || m.Dir == "" {
		return fmt.Errorf("download %s@%s: %s", module, version, m.Error)
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.CopyFS(dst, os.DirFS(m.Dir)); err != nil {
		return fmt.Errorf("copy %s@%s to %s: %w", module, version, dst, err)
	}
	return nil
}

// buildFromSource builds pkg (module/path@version) in an edited copy of its module into bin.
func (b Builder) buildFromSource(ctx context.Context, s Spec, pkg, bin string, env []string) error {
	path, ver, _ := strings.Cut(pkg, "@")
	module := s.Source.Module
	sub, ok := strings.CutPrefix(path, module+"/")
	if path == module {
		sub, ok = ".", true
	}
	if !ok {
		return fmt.Errorf("image %s: package %s is not below field Source.Module %s", s.Name, path, module)
	}
	work, err := os.MkdirTemp("", "gatecheck-"+s.Name+"-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	log := b.log()
	src := filepath.Join(work, "src")
	start := time.Now()
	stop := wait.Progress("building "+pkg+" from its edited module source", 30*time.Second, func(l string) { log.Info(l) })
	defer stop()
	env = append(env, "GOFLAGS=-mod=mod -buildvcs=false")
	if err := copyModule(ctx, module, ver, src, env); err != nil {
		return fmt.Errorf("image %s: %w", s.Name, err)
	}
	if err := s.Source.Edit(ctx, src, work, env); err != nil {
		return fmt.Errorf("image %s: edit the module source of %s@%s: %w", s.Name, module, ver, err)
	}
	ldflags := strings.TrimSpace("-s -w -buildid= " + s.Source.LDFlags)
	if _, err := command.OutputEnv(ctx, env, "go", "-C", src, "build", "-trimpath", NoDWARF, "-ldflags="+ldflags, "-o", bin+".part", "./"+strings.TrimPrefix(sub, "./")); err != nil {
		return fmt.Errorf("image %s: build %s (module source edited in %s): %w", s.Name, pkg, src, err)
	}
	if err := os.Rename(bin+".part", bin); err != nil {
		return err
	}
	log.Info("built from the module proxy", "image", s.Name, "module", module+"@"+ver, "took", time.Since(start).Round(time.Second))
	return nil
}
