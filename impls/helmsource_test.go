package impls

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/gatecheck/gatecheck/internal/command"
)

// helmEnvFor keeps a test's helm away from the user's helm configuration, caches and registry
// logins: every HELM_*_HOME and the registry config under dir.
func helmEnvFor(dir string) []string {
	return []string{
		"HELM_CACHE_HOME=" + filepath.Join(dir, "cache"), "HELM_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"HELM_DATA_HOME=" + filepath.Join(dir, "data"), "HELM_REGISTRY_CONFIG=" + filepath.Join(dir, "registry.json"),
		"HELM_REPOSITORY_CONFIG=" + filepath.Join(dir, "repositories.yaml"), "HELM_REPOSITORY_CACHE=" + filepath.Join(dir, "repository"),
	}
}

// requestLog records the paths a loopback server was asked for.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) saw(prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.paths, func(p string) bool { return strings.HasPrefix(p, prefix) })
}

// TestChartFromRepositoryAndOCI fetches the reference chart for real the two ways a profile can
// name a remote chart: from a chart repository (index.yaml by `helm repo index`, served on
// loopback) and from an OCI registry on loopback (go-containerregistry's pkg/registry, the one
// `gatecheck registry serve` runs; pushed with `helm push`). For each, helm runs with exactly
// the arguments gatecheck builds from the profile's fields: `helm pull` with ChartArgs must
// bring the very archive that was published, and `helm template` with the InstallArgs of a
// run (install swapped for template, so no cluster is needed) must render the chart from it.
func TestChartFromRepositoryAndOCI(t *testing.T) {
	t.Parallel()
	helm := helmForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	home := t.TempDir()
	env := helmEnvFor(home)
	run := func(args ...string) ([]byte, error) {
		return command.OutputDir(ctx, env, "", append([]string{helm}, args...)...)
	}
	mustRun := func(args ...string) []byte {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Publish: package the chart, index it, serve the directory; push the same archive to OCI.
	repoDir := t.TempDir()
	mustRun("package", "reference-helm/chart", "--destination", repoDir)
	const name, version = "gatecheck-reference", "0.1.0"
	archive := filepath.Join(repoDir, name+"-"+version+".tgz")
	published, err := os.ReadFile(archive)
	if err != nil {
		t.Fatalf("helm package: %v", err)
	}
	var repoLog, ociLog requestLog
	repo := httptest.NewServer(repoLog.wrap(http.FileServer(http.Dir(repoDir))))
	t.Cleanup(repo.Close)
	mustRun("repo", "index", repoDir, "--url", repo.URL)
	reg := httptest.NewServer(ociLog.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(reg.Close)
	regHost := strings.TrimPrefix(reg.URL, "http://")
	// helm speaks HTTPS to a registry unless told otherwise, also on loopback.
	mustRun("push", archive, "oci://"+regHost+"/charts", "--plain-http")

	for _, tc := range []struct {
		name, block string
		log         *requestLog
		fetched     string // a request that shows the chart came from that server
	}{
		{"repository", fmt.Sprintf("chart: %s\nrepo: %s\nversion: %s", name, repo.URL, version), &repoLog, "GET /" + name + "-" + version + ".tgz"},
		{"repository, version constraint", fmt.Sprintf("chart: %s\nrepo: %s\nversion: '^0.1'", name, repo.URL), &repoLog, "GET /index.yaml"},
		{"oci", fmt.Sprintf("chart: oci://%s/charts/%s\nversion: %s", regHost, name, version), &ociLog, "GET /v2/charts/" + name + "/blobs/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadHelm(t, "release: r\nnamespace: team-a\n"+tc.block+"\nset:\n- {name: proxy.serviceType, value: ClusterIP}")
			if err != nil {
				t.Fatal(err)
			}
			h := p.Install.Helm

			dest := t.TempDir()
			if out, err := run(append(append([]string{"pull"}, h.ChartArgs(p.Dir)...), "--destination", dest)...); err != nil {
				t.Fatalf("helm pull with the profile's chart arguments: %v\n%s", err, out)
			}
			got, err := os.ReadFile(filepath.Join(dest, filepath.Base(archive)))
			if err != nil {
				t.Fatalf("helm pull brought no %s: %v", filepath.Base(archive), err)
			}
			if !bytes.Equal(got, published) {
				t.Errorf("pulled archive differs from the published one (%d bytes; want %d)", len(got), len(published))
			}

			args := h.InstallArgs(p.Dir, HelmTarget{})
			if args[0] != "install" {
				t.Fatalf("install args %q do not start with install", args)
			}
			out, err := run(append([]string{"template"}, args[1:]...)...)
			if err != nil {
				t.Fatalf("helm template with the run's install arguments: %v\n%s", err, out)
			}
			rendered := string(out)
			for _, want := range []string{"helm.sh/chart: " + name + "-" + version, "name: gatecheck-reference-controller", "namespace: team-a", "--proxy-service-type=ClusterIP"} {
				if !strings.Contains(rendered, want) {
					t.Errorf("helm template output lacks %q", want)
				}
			}
			if !tc.log.saw(tc.fetched) {
				t.Errorf("the server was never asked %s: requests %q", tc.fetched, tc.log.paths)
			}
		})
	}

	// The same arguments fail when the chart is not there: the checks above can fail.
	p, err := loadHelm(t, fmt.Sprintf("release: r\nnamespace: n\nchart: oci://%s/charts/%s\nversion: 9.9.9", regHost, name))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(append(append([]string{"pull"}, p.Install.Helm.ChartArgs(p.Dir)...), "--destination", t.TempDir())...); err == nil {
		t.Errorf("helm pull of version 9.9.9, never pushed: succeeded\n%s", out)
	}
}
