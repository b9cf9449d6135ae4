package images

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/modfile"
)

func TestTraefikSpec(t *testing.T) {
	t.Parallel()
	s := Traefik()
	if want := []string{"github.com/traefik/traefik/v3/cmd/traefik@v3.7.13"}; !slices.Equal(s.Packages, want) {
		t.Errorf("Packages = %v; want %v", s.Packages, want)
	}
	if s.Source == nil || s.Source.Module != TraefikModule || s.Source.Edit == nil {
		t.Fatalf("Source = %+v; want module %s with an edit", s.Source, TraefikModule)
	}
	// The binary reports its version (traefik version) only through this -X.
	if want := "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.7.13"; s.Source.LDFlags != want {
		t.Errorf("LDFlags = %q; want %q", s.Source.LDFlags, want)
	}
	if _, err := Image(s, []byte("binary"), "amd64"); err != nil {
		t.Errorf("Image: %v", err)
	}
	// Built only when named: ten cold minutes must not join every cluster's image load.
	if slices.ContainsFunc(Default(), func(d Spec) bool { return d.Name == s.Name }) {
		t.Errorf("Default() holds %s; it belongs to OnRequest() only", s.Name)
	}
	if !slices.ContainsFunc(OnRequest(), func(d Spec) bool { return d.Name == s.Name }) {
		t.Errorf("OnRequest() lacks %s", s.Name)
	}
}

func TestEditTraefikGoMod(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/traefik-go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := editTraefikGoMod(f, "/work/lego"); err != nil {
		t.Fatal(err)
	}
	f.Cleanup()
	replaces := map[string]string{}
	for _, r := range f.Replace {
		replaces[r.Old.Path] = strings.TrimSuffix(r.New.Path+"@"+r.New.Version, "@")
	}
	want := map[string]string{
		"github.com/traefik/traefik/dynamic/ext": "./pkg/config/dynamic/ext",
		"github.com/abbot/go-http-auth":          "github.com/containous/go-http-auth@v0.4.1-0.20200324110947-a37a7636d23e",
		"github.com/go-acme/lego/v5":             "/work/lego",
		"github.com/go-check/check":              "github.com/containous/check@v0.0.0-20170915194414-ca0bf163426a",
	}
	if diff := cmp.Diff(want, replaces); diff != "" {
		t.Errorf("replaces (-want +got):\n%s", diff)
	}
	var requires []string
	for _, r := range f.Require {
		requires = append(requires, r.Mod.Path)
	}
	wantReq := []string{"github.com/abbot/go-http-auth", "github.com/go-acme/lego/v5", "github.com/traefik/traefik/dynamic/ext", "golang.org/x/net"}
	if diff := cmp.Diff(wantReq, requires); diff != "" {
		t.Errorf("requires (-want +got): the refused SDK modules must go, the rest stay\n%s", diff)
	}
	if _, err := f.Format(); err != nil {
		t.Errorf("Format: %v", err)
	}
}

func TestEditTraefikGoModOtherVersion(t *testing.T) {
	t.Parallel()
	f, err := modfile.Parse("go.mod", []byte("module github.com/traefik/traefik/v3\n\ngo 1.26.0\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = editTraefikGoMod(f, "/work/lego")
	if err == nil || !strings.Contains(err.Error(), "dynamic/ext") {
		t.Errorf("editTraefikGoMod on a go.mod without the ext replace: got %v; want an error naming dynamic/ext", err)
	}
}

func TestDropDNSProviders(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/lego-dns-providers.go.txt")
	if err != nil {
		t.Fatal(err)
	}
	// ucloud is a suffix of baiducloud: baiducloud must stay.
	got, err := dropDNSProviders(data, []string{"alidns", "edgedns", "ucloud"})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"providers/dns/alidns\"", "alidns.New", `"edgedns", "fastdns"`, "edgedns.New", "providers/dns/ucloud\"", `case "ucloud"`} {
		if strings.Contains(string(got), gone) {
			t.Errorf("still holds %s:\n%s", gone, got)
		}
	}
	for _, kept := range []string{"providers/dns/baiducloud\"", "baiducloud.NewDNSProvider()", `case "exec":`, "exec.NewDNSProvider()", "acmedns.NewDNSProvider()", "default:"} {
		if !strings.Contains(string(got), kept) {
			t.Errorf("lost %s:\n%s", kept, got)
		}
	}

	if _, err := dropDNSProviders(data, []string{"alidns", "nosuchprovider"}); err == nil || !strings.Contains(err.Error(), "nosuchprovider") {
		t.Errorf("a provider the file does not import: got %v; want an error naming it", err)
	}
	// A case whose return is not on the next line (another generator's shape) leaves a
	// reference behind: an error, not a broken 10-minute build.
	odd := strings.Replace(string(data), "case \"alidns\":\n\t\treturn alidns.NewDNSProvider()", "case \"alidns\":\n\n\t\treturn alidns.NewDNSProvider()", 1)
	if _, err := dropDNSProviders([]byte(odd), []string{"alidns"}); err == nil {
		t.Error("a left-over reference to a dropped provider: got no error")
	}
}
