package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host"
	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/internal/wait"
)

// Registry is where gatecheck pushes its images for a cluster that cannot load them
// (--registry HOST:PORT[/prefix]): the nodes pull them from there.
type Registry struct {
	// Host is HOST[:PORT].
	Host string
	// Prefix is a repository path prefix ("" for none), e.g. "team/gatecheck".
	Prefix string
	// Insecure pushes (and expects the nodes to pull) over plain HTTP: loopback hosts always,
	// others only when asked (--registry-insecure).
	Insecure bool
}

// ParseRegistry checks a --registry value, HOST:PORT[/prefix], without a scheme. Loopback
// hosts (127.0.0.1, localhost, ::1) are spoken to over plain HTTP; others over HTTPS unless
// insecure.
func ParseRegistry(s string, insecure bool) (Registry, error) {
	bad := func(why string, a ...any) (Registry, error) {
		return Registry{}, fmt.Errorf("--registry %q: %s (want HOST:PORT[/prefix], e.g. 127.0.0.1:5000 or registry.example.com/team)", s, fmt.Sprintf(why, a...))
	}
	if s == "" {
		return bad("empty")
	}
	if strings.Contains(s, "://") {
		return bad("no scheme: plain HTTP is used for loopback registries and with --registry-insecure")
	}
	hostPart, prefix, _ := strings.Cut(strings.TrimSuffix(s, "/"), "/")
	if _, err := name.NewRegistry(hostPart, name.StrictValidation); err != nil || hostPart == "" {
		return bad("host %q is not a registry host: %v", hostPart, err)
	}
	h := hostPart
	if hh, port, err := net.SplitHostPort(hostPart); err == nil {
		h = hh
		if port == "" {
			return bad("empty port")
		}
	} else if strings.Count(hostPart, ":") > 0 {
		return bad("host %q: %v", hostPart, err)
	}
	if prefix != "" {
		if _, err := name.NewRepository(hostPart+"/"+prefix+"/x", name.StrictValidation); err != nil {
			return bad("prefix %q is not a repository path (lower-case letters, digits, '.', '_', '-', '/'): %v", prefix, err)
		}
	}
	ip := net.ParseIP(h)
	loopback := h == "localhost" || (ip != nil && ip.IsLoopback())
	return Registry{Host: hostPart, Prefix: prefix, Insecure: insecure || loopback}, nil
}

// String is the --registry form.
func (r Registry) String() string {
	if r.Prefix == "" {
		return r.Host
	}
	return r.Host + "/" + r.Prefix
}

func (r Registry) opts() []name.Option {
	if r.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Ref is where the image ref goes in r: r/[prefix/]<its registry>/<its repository>:<its tag>,
// so images of different origins never collide (gatecheck.dev/echo-backend:dev becomes
// 127.0.0.1:5000/gatecheck.dev/echo-backend:dev).
func (r Registry) Ref(ref string) (string, error) {
	src, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	reg := src.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	out := r.String() + "/" + reg + "/" + src.Context().RepositoryStr()
	switch s := src.(type) {
	case name.Tag:
		out += ":" + s.TagStr()
	case name.Digest:
		out += "@" + s.DigestStr()
	}
	return out, nil
}

func (r Registry) scheme() string {
	if r.Insecure {
		return "http"
	}
	return "https"
}

// Ping checks the registry answers the distribution API (GET /v2/: 200, or 401 where it
// wants credentials, which the push then sends from $GATECHECK_REGISTRY_USERNAME/PASSWORD).
func (r Registry) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := r.scheme() + "://" + r.Host + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--registry %s: %w", r, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		hint := ""
		if !r.Insecure {
			hint = " (HTTPS; a plain-HTTP registry not on loopback needs --registry-insecure)"
		}
		return fmt.Errorf("--registry %s: not reachable at %s%s: %w", r, url, hint, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("--registry %s: GET %s answered %s; want a registry (distribution API v2)", r, url, resp.Status)
	}
	return nil
}

// Push pushes every image of the docker-archive tarballs, under every tag it carries, to r
// with go-containerregistry (anonymously, or as $GATECHECK_REGISTRY_USERNAME with
// $GATECHECK_REGISTRY_PASSWORD), and returns each built
// reference's pushed one. Progress goes to out: one line per image, and a line every 15 s
// while a large one uploads.
func Push(ctx context.Context, r Registry, archives []string, out io.Writer) (imagemap.Map, error) {
	if out == nil {
		out = io.Discard
	}
	m := imagemap.Map{}
	for _, a := range archives {
		opener := func() (io.ReadCloser, error) { return os.Open(a) }
		manifest, err := tarball.LoadManifest(opener)
		if err != nil {
			return m, fmt.Errorf("push %s: read image archive: %w", a, err)
		}
		for _, d := range manifest {
			for _, t := range d.RepoTags {
				if err := pushOne(ctx, r, opener, t, m, out); err != nil {
					return m, fmt.Errorf("push %s (from %s) to --registry %s: %w", t, a, r, err)
				}
			}
		}
	}
	return m, nil
}

func pushOne(ctx context.Context, r Registry, opener tarball.Opener, t string, m imagemap.Map, out io.Writer) error {
	tag, err := name.NewTag(t)
	if err != nil {
		return err
	}
	img, err := tarball.Image(opener, &tag)
	if err != nil {
		return err
	}
	dstStr, err := r.Ref(t)
	if err != nil {
		return err
	}
	dst, err := name.ParseReference(dstStr, r.opts()...)
	if err != nil {
		return err
	}
	size, _ := imageSize(img)
	start := time.Now()
	stop := wait.Progress(fmt.Sprintf("pushing %s (%s)", dstStr, mib(size)), 15*time.Second, func(l string) { fmt.Fprintln(out, "  "+l) })
	err = remote.Write(dst, img, remote.WithContext(ctx), remote.WithAuth(registryAuth()),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 3}))
	stop()
	if err != nil {
		return err
	}
	m[t] = dstStr
	fmt.Fprintf(out, "  pushed %s -> %s (%s) in %s\n", t, dstStr, mib(size), time.Since(start).Round(10*time.Millisecond))
	return nil
}

// Registry credentials, when the registry wants them (a loopback registry does not).
const (
	EnvRegistryUsername = "GATECHECK_REGISTRY_USERNAME"
	EnvRegistryPassword = "GATECHECK_REGISTRY_PASSWORD"
)

func registryAuth() authn.Authenticator {
	if u := os.Getenv(EnvRegistryUsername); u != "" {
		return &authn.Basic{Username: u, Password: os.Getenv(EnvRegistryPassword)}
	}
	return authn.Anonymous
}

func imageSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	return n, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TrustRegistryOnHost lets the host cluster (state in stateDir, default
// /var/lib/gatecheck/host) pull from the plain-HTTP loopback registry at hostPort; see
// `gatecheck registry serve`. It returns the hosts.toml written and a func that removes it.
func TrustRegistryOnHost(stateDir, hostPort string) (string, func() error, error) {
	return host.New(host.Options{StateDir: stateDir, CacheDir: CacheDir()}).TrustRegistry(hostPort)
}
