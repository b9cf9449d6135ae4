package images

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSlimCoreDNSCoversUpstreamCorefiles: every plugin a Corefile in the pinned conformance
// suite's manifests names is one the slim CoreDNS carries (else CoreDNS would refuse to start
// with "unknown directive" and the base Pods would never be Ready).
func TestSlimCoreDNSCoversUpstreamCorefiles(t *testing.T) {
	t.Parallel()
	dir := conformanceDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yaml"))
	files = append(files, filepath.Join(dir, "base", "manifests.yaml"))
	corefiles := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, directive := range corefileDirectives(string(data), &corefiles) {
			if !slices.Contains(coreDNSPlugins, directive) {
				t.Errorf("%s: a Corefile uses plugin %q, which the slim CoreDNS (coreDNSPlugins) lacks", filepath.Base(f), directive)
			}
		}
	}
	if corefiles == 0 {
		t.Fatal("found no Corefile in the conformance manifests; the parser is out of date")
	}
}

// corefileDirectives returns the directives of every `Corefile: |` block in a YAML stream.
func corefileDirectives(yaml string, count *int) []string {
	var out []string
	lines := strings.Split(yaml, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "Corefile: |" {
			continue
		}
		*count++
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		for i++; i < len(lines); i++ {
			l := lines[i]
			if strings.TrimSpace(l) == "" {
				continue
			}
			if len(l)-len(strings.TrimLeft(l, " ")) <= indent {
				i--
				break
			}
			f := strings.Fields(l)
			if f[0] == "}" || strings.HasSuffix(strings.TrimSpace(l), "{") && strings.Contains(f[0], ":") {
				continue
			}
			out = append(out, f[0])
		}
	}
	return out
}

func TestEditCoreDNS(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	if err := editCoreDNS(context.Background(), src, "", nil); err == nil {
		t.Error("edit of a tree without core/plugin/zplugin.go: got nil error")
	}
	gen := filepath.Join(src, "core", "plugin", "zplugin.go")
	if err := os.MkdirAll(filepath.Dir(gen), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gen, []byte("package plugin\n\nimport _ \"github.com/coredns/coredns/plugin/route53\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := editCoreDNS(context.Background(), src, "", nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(gen)
	got := string(data)
	if strings.Contains(got, "route53") {
		t.Error("the edited registry still imports route53")
	}
	for _, p := range []string{"forward", "whoami", "errors", "log"} {
		if !strings.Contains(got, `_ "github.com/coredns/coredns/plugin/`+p+`"`) {
			t.Errorf("the edited registry does not import plugin %s:\n%s", p, got)
		}
	}
}
