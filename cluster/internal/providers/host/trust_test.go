package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rootOwnedTempDir is a temp dir root owns, mode 0755, under a chain root can vouch for
// (t.TempDir's parents are; the dir itself is 0700 and made 0755 here).
func rootOwnedTempDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("ownership checks are root's: run as root")
	}
	dir := t.TempDir()
	if err := rootOnly(dir, ""); err != nil {
		t.Skipf("temp dir %s is not under a root-only chain here: %v", dir, err)
	}
	return dir
}

func TestTrustedCacheRefusesWhatOthersCanChange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit makes the cache (or something in it) untrusted and returns the path the
		// error must name.
		edit    func(t *testing.T, cache string) string
		wantErr string
	}{
		{name: "root-owned 0755 is trusted", edit: func(*testing.T, string) string { return "" }},
		{name: "cache owned by another user", wantErr: "is owned by uid 65534, not root", edit: func(t *testing.T, cache string) string {
			chown(t, cache, 65534)
			return cache
		}},
		{name: "cache group-writable", wantErr: "is writable by group or others (mode -rwxrwxr-x)", edit: func(t *testing.T, cache string) string {
			chmod(t, cache, 0o775)
			return cache
		}},
		{name: "binary dir world-writable", wantErr: "is writable by group or others", edit: func(t *testing.T, cache string) string {
			dir := filepath.Join(cache, "etcd", EtcdVersion, "bin")
			chmod(t, dir, 0o757)
			return dir
		}},
		{name: "binary owned by another user", wantErr: "is owned by uid 65534", edit: func(t *testing.T, cache string) string {
			bin := filepath.Join(cache, "kubernetes", KubernetesVersion, "bin", "kubelet")
			chown(t, bin, 65534)
			return bin
		}},
		{name: "binary group-writable", wantErr: "is writable by group or others", edit: func(t *testing.T, cache string) string {
			bin := filepath.Join(cache, "containerd", ContainerdVersion, "bin", "ctr")
			chmod(t, bin, 0o775)
			return bin
		}},
		{name: "parent of the cache owned by another user", wantErr: "is owned by uid 65534", edit: func(t *testing.T, cache string) string {
			chown(t, filepath.Dir(cache), 65534)
			return filepath.Dir(cache)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := rootOwnedTempDir(t)
			chmod(t, base, 0o755)
			cache := filepath.Join(base, "cache")
			for _, b := range []string{"kubernetes/" + KubernetesVersion + "/bin/kubelet", "containerd/" + ContainerdVersion + "/bin/ctr", "etcd/" + EtcdVersion + "/bin/etcd"} {
				p := filepath.Join(cache, b)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("#!/bin/true\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			named := tt.edit(t, cache)
			err := New(Options{CacheDir: cache, StateDir: filepath.Join(base, "state")}).trustedBinaries()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v; want trusted", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil; want refused with %q", tt.wantErr)
			}
			for _, want := range []string{"refusing ", named + " " + tt.wantErr, "chown -R root:root " + cache, "GATECHECK_CACHE"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q; want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestRootOnlyAllowsStickyParents(t *testing.T) {
	t.Parallel()
	base := rootOwnedTempDir(t)
	sticky := filepath.Join(base, "tmp")
	if err := os.Mkdir(sticky, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, sticky, 0o1777)
	dir := filepath.Join(sticky, "cache")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := rootOnly(dir, "fix"); err != nil {
		t.Errorf("root-owned dir in a sticky world-writable dir: got %v; want trusted (others cannot rename it)", err)
	}
	if err := rootOnly(sticky, "fix"); err == nil {
		t.Errorf("the sticky world-writable dir itself: got trusted; want refused (others can add to it)")
	}
}

func TestRootOnlyFollowsSymlinks(t *testing.T) {
	t.Parallel()
	base := rootOwnedTempDir(t)
	chmod(t, base, 0o755)
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	chown(t, theirs, 65534)
	link := filepath.Join(base, "cache")
	if err := os.Symlink(theirs, link); err != nil {
		t.Fatal(err)
	}
	err := rootOnly(link, "fix")
	if err == nil || !strings.Contains(err.Error(), theirs+" is owned by uid 65534") {
		t.Errorf("root-owned symlink to another user's dir: got %v; want refused naming %s", err, theirs)
	}
}

func TestTrustedSourcesRefusesAScriptOthersCanChange(t *testing.T) {
	t.Parallel()
	root := rootOwnedTempDir(t)
	chmod(t, root, 0o755)
	for _, f := range []string{"go.mod", "go.sum", "hack/build-host-binaries.sh", "cluster/host/build/kubernetes/go.mod", "cluster/host/build/etcd/go.mod", "cluster/internal/pause/main.go"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prov := New(Options{ModuleRoot: root, CacheDir: filepath.Join(root, "cache"), StateDir: filepath.Join(root, "state")})
	if err := prov.trustedSources(); err != nil {
		t.Fatalf("root-owned checkout: got %v; want trusted", err)
	}
	script := filepath.Join(root, "hack", "build-host-binaries.sh")
	chown(t, script, 65534)
	err := prov.trustedSources()
	if err == nil || !strings.Contains(err.Error(), script+" is owned by uid 65534") || !strings.Contains(err.Error(), "chown -R root:root "+root) {
		t.Errorf("build script owned by another user: got %v; want refused naming %s and the fix", err, script)
	}
	chown(t, script, 0)
	chmod(t, filepath.Join(root, "cluster/host/build/etcd/go.mod"), 0o666)
	if err := prov.trustedSources(); err == nil || !strings.Contains(err.Error(), "etcd/go.mod is writable by group or others") {
		t.Errorf("world-writable etcd build go.mod: got %v; want refused", err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if mode&0o1000 != 0 {
		mode = mode&0o777 | os.ModeSticky
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
