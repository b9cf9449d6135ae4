// Package imagemap rewrites image references: where gatecheck pushed its images to a registry
// (--registry), everything it deploys names the pushed references instead of the built ones.
package imagemap

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Env is the environment variable that carries a Map to gatecheck's child processes (the
// upstream suite rewrites its manifests with it).
const Env = "GATECHECK_IMAGE_MAP"

// Map maps an image reference as built (gatecheck.dev/echo-backend:dev) to the reference its
// nodes pull (127.0.0.1:5000/gatecheck.dev/echo-backend:dev).
type Map map[string]string

// Get returns m's reference for ref, or ref itself.
func (m Map) Get(ref string) string {
	if to, ok := m[ref]; ok {
		return to
	}
	return ref
}

// String encodes m for Env: from=to pairs, comma separated, sorted.
func (m Map) String() string {
	pairs := make([]string, 0, len(m))
	for from, to := range m {
		pairs = append(pairs, from+"="+to)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// Parse decodes String's form; "" is an empty map. A malformed pair is an error naming it.
func Parse(s string) (Map, error) {
	m := Map{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, p := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || from == "" || to == "" || strings.ContainsAny(from+to, " \t\n=") {
			return nil, fmt.Errorf("%s: pair %q: want FROM=TO image references", Env, p)
		}
		m[from] = to
	}
	return m, nil
}

// Replace rewrites every whole reference of m in s: one that starts s or follows a space, quote,
// '=' or ':' + space, and ends s or is followed by a space, quote, comma or line end. So
// "image: a:dev", "--proxy-image=a:dev" and "a:dev" are rewritten, "a:dev2" and "x/a:dev" are not.
func (m Map) Replace(s string) string {
	if len(m) == 0 {
		return s
	}
	froms := make([]string, 0, len(m))
	for from := range m {
		froms = append(froms, from)
	}
	// Longest first, so a reference that contains another is matched whole.
	sort.Slice(froms, func(i, j int) bool { return len(froms[i]) > len(froms[j]) })
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		if i == 0 || strings.IndexByte(" \t\"'=\n", s[i-1]) >= 0 {
			for _, from := range froms {
				end := i + len(from)
				if strings.HasPrefix(s[i:], from) && (end == len(s) || strings.IndexByte(" \t\"',\r\n", s[end]) >= 0) {
					b.WriteString(m[from])
					i, matched = end, true
					break
				}
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// ReplaceAll rewrites every string in a decoded object (map[string]any/[]any of JSON or YAML),
// in place: container images, and flags that carry an image (the reference controller's
// --proxy-image=...). It returns how many strings changed.
func (m Map) ReplaceAll(v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				if r := m.Replace(s); r != s {
					x[k], n = r, n+1
				}
				continue
			}
			n += m.ReplaceAll(e)
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				if r := m.Replace(s); r != s {
					x[i], n = r, n+1
				}
				continue
			}
			n += m.ReplaceAll(e)
		}
	}
	return n
}

// FS returns fsys with m applied to the content of its .yaml and .yml files (the upstream
// suite's manifests); other files are fsys's own.
func (m Map) FS(fsys fs.FS) fs.FS { return rewriteFS{fsys, m} }

type rewriteFS struct {
	fs.FS
	m Map
}

func (r rewriteFS) Open(name string) (fs.File, error) {
	f, err := r.FS.Open(name)
	if err != nil || len(r.m) == 0 {
		return f, err
	}
	if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" {
		return f, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return r.FS.Open(name)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: strings.NewReader(r.m.Replace(string(data))), fi: fi}, nil
}

// ReadFile lets fs.ReadFile use Open (the embedded FS's own ReadFile would bypass the rewrite).
func (r rewriteFS) ReadFile(name string) ([]byte, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// ReadDir passes directories through (fs.ReadDir / fs.WalkDir on the wrapped FS).
func (r rewriteFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(r.FS, name) }

type memFile struct {
	*strings.Reader
	fi fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return sizedInfo{f.fi, f.Size()}, nil }
func (f *memFile) Close() error               { return nil }

type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }

var _ fs.ReadFileFS = rewriteFS{}
