package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host"
)

// HostLeftovers lists what a host cluster left on this machine: processes running binaries
// from the cache, mounts under its state dir, CNI network namespaces, the gatecheck0 bridge,
// KUBE-/CNI- or guard iptables rules (the pod, service and MetalLB pool guards all carry
// the gatecheck-host-guard comment), and the record of machine changes up writes and a
// complete down removes. Empty means a clean machine (on one where nothing else makes
// KUBE-/CNI- chains or cni-* netns: down leaves those that were there before up, this does
// not tell them apart). Teardown tests (cluster
// e2e, the interrupted-run test) check it after `down`.
func HostLeftovers() []string {
	var left []string
	cache := CacheDir()
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		exe, err := os.Readlink(p)
		if err == nil && strings.HasPrefix(exe, cache+"/") && strings.Contains(exe, "/bin/") {
			left = append(left, fmt.Sprintf("process %s runs %s", filepath.Dir(p), exe))
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, host.DefaultStateDir) || strings.Contains(line, "/netns/cni-") {
			left = append(left, "mount "+line)
		}
	}
	if ns, _ := filepath.Glob("/run/netns/cni-*"); len(ns) > 0 {
		left = append(left, fmt.Sprintf("netns %v", ns))
	}
	if changes := filepath.Join(host.DefaultStateDir, host.ChangesFile); fileExists(changes) {
		// Removed only by a complete teardown: what it lists was not all undone.
		left = append(left, "record of machine changes not undone: "+changes)
	}
	if _, err := net.InterfaceByName("gatecheck0"); err == nil {
		left = append(left, "bridge gatecheck0")
	}
	for _, bin := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue // no iptables installed yet: no chain can exist
		}
		out, err := exec.Command(bin).Output()
		if err != nil {
			left = append(left, fmt.Sprintf("%s failed: %v", bin, err))
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") || strings.Contains(line, "-j KUBE-") ||
				strings.Contains(line, "-j CNI-") || strings.Contains(line, "gatecheck-host-guard") {
				left = append(left, bin+": "+line)
			}
		}
	}
	return left
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
