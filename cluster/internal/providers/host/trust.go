package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The host provider runs as root, so whatever it executes (the cached binaries, the build
// script, the sources it builds images from) must be something only root can change. These
// checks refuse a path when it, or any directory above it, is owned by another user or
// writable by group or others: either would let that user swap what root runs.

// rootOnly checks path and every directory above it. A directory with the sticky bit (/tmp)
// may be writable by everyone: others cannot rename or remove what root owns in it. fix
// says what to do, in the error.
func rootOnly(path, fix string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	chains := []string{abs}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil && resolved != abs {
		chains = append(chains, resolved)
	}
	for _, p := range chains {
		for d := p; ; d = filepath.Dir(d) {
			if err := rootOnlyEntry(d, d != p); err != nil {
				return untrusted(path, d, err, fix)
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return nil
}

// untrusted says what root refuses and why: the path itself, or the directory above it
// (culprit) that others can change.
func untrusted(path, culprit string, err error, fix string) error {
	if culprit == path {
		return fmt.Errorf("refusing %w; %s", err, fix)
	}
	return fmt.Errorf("refusing %s: %w; %s", path, err, fix)
}

// rootOnlyEntry checks one path without following a final symlink (a symlink is checked for
// its owner; the chain of its target is checked separately).
func rootOnlyEntry(path string, ancestor bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root", path, st.Uid)
	}
	mode := fi.Mode()
	if mode&fs.ModeSymlink != 0 {
		return nil
	}
	if mode.Perm()&0o022 != 0 && !(ancestor && mode.IsDir() && mode&fs.ModeSticky != 0) {
		return fmt.Errorf("%s is writable by group or others (mode %s)", path, mode.Perm())
	}
	return nil
}

// rootOnlyDir checks dir (as rootOnly) and every entry directly in it.
func rootOnlyDir(dir, fix string) error {
	if err := rootOnly(dir, fix); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("refusing %s: %w; %s", dir, err, fix)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := rootOnlyEntry(p, false); err != nil {
			return untrusted(p, p, err, fix)
		}
	}
	return nil
}

// cacheFix is the advice for a cache that root must not run from.
func cacheFix(cache string) string {
	return fmt.Sprintf("the host cluster runs these binaries as root: `chown -R root:root %s && chmod -R go-w %s`, or set GATECHECK_CACHE to a directory only root can write", cache, cache)
}

// trustedCache checks the cache directory and the binaries root runs from it. The cache is
// created (0755) when missing, so the first build writes into a directory known to be root's.
func (p *Provider) trustedCache() error {
	if err := os.MkdirAll(p.opts.CacheDir, 0o755); err != nil {
		return fmt.Errorf("create cache %s: %w", p.opts.CacheDir, err)
	}
	return rootOnly(p.opts.CacheDir, cacheFix(p.opts.CacheDir))
}

// trustedBinaries checks the cache, every pinned binary directory and what is in it.
func (p *Provider) trustedBinaries() error {
	if err := p.trustedCache(); err != nil {
		return err
	}
	for _, c := range []struct{ name, version string }{{"kubernetes", KubernetesVersion}, {"containerd", ContainerdVersion}, {"etcd", EtcdVersion}} {
		dir := p.binDir(c.name, c.version)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			continue // not built yet: nothing there to run
		}
		if err := rootOnlyDir(dir, cacheFix(p.opts.CacheDir)); err != nil {
			return err
		}
	}
	return nil
}

// trustedSources checks the checkout root builds from: go.mod, the build script, the
// modules it builds the pinned binaries in, and the pause image's source (its binary is
// every pod's sandbox process).
func (p *Provider) trustedSources() error {
	root := p.opts.ModuleRoot
	fix := fmt.Sprintf("the host cluster builds and runs this as root: `chown -R root:root %s && chmod -R go-w %s`, or run gatecheck from a checkout only root can write", root, root)
	for _, f := range []string{"go.mod", "go.sum", filepath.Join("hack", "build-host-binaries.sh")} {
		if err := rootOnly(filepath.Join(root, f), fix); err != nil {
			return err
		}
	}
	for _, d := range []string{"cluster/host/build/kubernetes", "cluster/host/build/etcd", "cluster/internal/pause"} {
		if err := rootOnlyDir(filepath.Join(root, d), fix); err != nil {
			return err
		}
	}
	return nil
}
