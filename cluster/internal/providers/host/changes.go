package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/netguard"
)

// ChangesFile, in the state dir, records what up changed on the machine outside the state
// dir, so down undoes exactly that. It exists from the start of a bring-up until a complete
// teardown: found on its own, it says an earlier teardown did not finish.
const ChangesFile = "machine-changes.json"

// chainPrefixes name the iptables chains the cluster's components create (kube-proxy and
// the kubelet KUBE-*, the CNI plugins CNI-*). Other Kubernetes installations use the same
// names, so which are gatecheck's is known only by what was there before up.
var chainPrefixes = []string{"KUBE-", "CNI-"}

// machineChanges is the content of ChangesFile.
type machineChanges struct {
	// Sysctls maps each sysctl up changed (its path under /proc/sys, e.g.
	// net/ipv4/ip_forward) to its value before; down writes those values back.
	Sysctls map[string]string `json:"sysctls"`
	// ForeignChains are the KUBE-/CNI- chains that existed before up: someone else's, left
	// alone by down (every other chain with those prefixes appeared with the cluster).
	ForeignChains netguard.Chains `json:"foreignChains"`
	// ForeignNetns are the cni-* network namespaces (paths) that existed before up.
	ForeignNetns []string `json:"foreignNetns"`
}

// changeLog is machineChanges bound to its file; every change is saved before it is made,
// so a killed up leaves a record down can act on.
type changeLog struct {
	path string
	machineChanges
}

// loadChanges reads the record at path; ok is false when there is none.
func loadChanges(path string) (c *changeLog, ok bool, err error) {
	c = &changeLog{path: path, machineChanges: machineChanges{Sysctls: map[string]string{}, ForeignChains: netguard.Chains{}}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &c.machineChanges); err != nil {
		return nil, false, fmt.Errorf("%s is not a record of machine changes (%w); if no host cluster runs, remove it and clean up by hand", path, err)
	}
	if c.Sysctls == nil {
		c.Sysctls = map[string]string{}
	}
	return c, true, nil
}

// save writes the record atomically, readable by root only.
func (c *changeLog) save() error {
	data, err := json.MarshalIndent(c.machineChanges, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	return nil
}

// remove deletes the record once everything it lists is undone.
func (c *changeLog) remove() error {
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", c.path, err)
	}
	return nil
}

// snapshotForeign records the KUBE-/CNI- chains and cni-* netns already on the machine.
func (c *changeLog) snapshotForeign(ctx context.Context, netnsDirs []string) error {
	chains, err := netguard.ListChains(ctx, chainPrefixes...)
	if err != nil {
		return err
	}
	c.ForeignChains = chains
	c.ForeignNetns = cniNetns(netnsDirs)
	return c.save()
}

// setSysctl sets key (a path under procSys) to value, recording the value before the first
// time it changes it; an already matching value is left alone and not recorded.
func (c *changeLog) setSysctl(procSys, key, value string) error {
	path := filepath.Join(procSys, key)
	name := strings.ReplaceAll(key, "/", ".")
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read sysctl %s: %w", name, err)
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if _, seen := c.Sysctls[key]; !seen {
		c.Sysctls[key] = strings.TrimSpace(string(cur))
		if err := c.save(); err != nil {
			return err
		}
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// restoreSysctls writes back every recorded value; restored ones leave the record.
func (c *changeLog) restoreSysctls(procSys string) error {
	var errs []error
	for key, prev := range c.Sysctls {
		name := strings.ReplaceAll(key, "/", ".")
		if err := os.WriteFile(filepath.Join(procSys, key), []byte(prev), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s (its value before the host cluster; set it by hand): %w", name, prev, err))
			continue
		}
		delete(c.Sysctls, key)
	}
	if err := c.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cniNetns lists the cni-* network namespaces in dirs (the CRI names them so), each once
// (/var/run is usually /run).
func cniNetns(dirs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, "cni-*"))
		for _, m := range matches {
			real := m
			if r, err := filepath.EvalSymlinks(m); err == nil {
				real = r
			}
			if !seen[real] {
				seen[real] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// foreignNetns reports whether the netns at path was there before up (compared after
// resolving symlinks, so /var/run/netns/x and /run/netns/x are one).
func (c *changeLog) foreignNetns(path string) bool {
	real := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	rp := real(path)
	return slices.ContainsFunc(c.ForeignNetns, func(f string) bool { return f == path || real(f) == rp })
}
