package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mountsUnder lists mount points at or below dir, deepest first, from /proc/self/mountinfo.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return parseMountsUnder(string(data), dir)
}

func parseMountsUnder(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if (mp == dir || strings.HasPrefix(mp, dir+"/")) && !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	// Deepest (longest) first so nested mounts go before their parents.
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount below dir (kubelet volumes, overlay rootfs, shm),
// repeating while mounts stack.
func unmountUnder(dir string) error {
	var errs []error
	for range 5 {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

// netnsDirs are where the CRI mounts pod network namespaces.
var netnsDirs = []string{"/run/netns", "/var/run/netns"}

// removeNetns unmounts and removes the cni-* network namespaces, except those keep says
// are not the cluster's.
func removeNetns(keep func(path string) bool) error {
	var errs []error
	for _, m := range cniNetns(netnsDirs) {
		if keep(m) {
			continue
		}
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount netns %s: %w", m, err))
			continue
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove netns %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}
