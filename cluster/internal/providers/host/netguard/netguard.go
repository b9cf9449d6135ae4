// Package netguard keeps the host cluster hermetic (REJECT rules so nothing from the pod,
// service or load balancer ranges leaves through the uplink) and removes the iptables chains the cluster's
// components leave behind (KUBE-* from kubelet and kube-proxy, CNI-* from the CNI plugins).
package netguard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/internal/command"
)

// Comment marks the guard rules so they can be found and removed precisely.
const Comment = "gatecheck-host-guard"

// Rule is one iptables rule in one table and chain.
type Rule struct {
	Table, Chain string
	Spec         []string
}

// GuardRules are the REJECT rules for podCIDR, serviceCIDR and lbCIDR (MetalLB's pool)
// leaving through uplink. kube-proxy DNATs a load balancer address to a pod before these
// rules see it, so only traffic to a pool address no Service holds meets them, from the
// machine (OUTPUT) or from a pod (FORWARD): it is rejected instead of routed off the machine.
func GuardRules(uplink, podCIDR, serviceCIDR, lbCIDR string) []Rule {
	c := []string{"-m", "comment", "--comment", Comment, "-j", "REJECT"}
	return []Rule{
		{Table: "filter", Chain: "FORWARD", Spec: append([]string{"-s", podCIDR, "-o", uplink}, c...)},
		{Table: "filter", Chain: "OUTPUT", Spec: append([]string{"-d", serviceCIDR, "-o", uplink}, c...)},
		{Table: "filter", Chain: "OUTPUT", Spec: append([]string{"-d", lbCIDR, "-o", uplink}, c...)},
		{Table: "filter", Chain: "FORWARD", Spec: append([]string{"-d", lbCIDR, "-o", uplink}, c...)},
	}
}

// Install inserts each rule unless it is already there.
func Install(ctx context.Context, rules []Rule) error {
	for _, r := range rules {
		if _, err := command.Output(ctx, append([]string{"iptables", "-w", "-t", r.Table, "-C", r.Chain}, r.Spec...)...); err == nil {
			continue
		}
		if _, err := command.Output(ctx, append([]string{"iptables", "-w", "-t", r.Table, "-I", r.Chain}, r.Spec...)...); err != nil {
			return fmt.Errorf("install guard rule in %s/%s: %w", r.Table, r.Chain, err)
		}
	}
	return nil
}

// RemoveGuards deletes every rule carrying Comment, whatever uplink or range it names (the
// uplink may have changed since it was installed).
func RemoveGuards(ctx context.Context) error {
	out, err := command.Output(ctx, "iptables", "-w", "-t", "filter", "-S")
	if err != nil {
		return fmt.Errorf("list filter rules: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, Comment) {
			continue
		}
		args, err := SplitRule(line)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		args[0] = "-D"
		if _, err := command.Output(ctx, append([]string{"iptables", "-w", "-t", "filter"}, args...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tables are where the cluster's components create chains, as "binary table" (the key of
// a Chains map).
var tables = []string{"iptables filter", "iptables nat", "iptables mangle", "ip6tables filter", "ip6tables nat", "ip6tables mangle"}

// Chains maps "binary table" (e.g. "iptables nat") to chain names.
type Chains map[string][]string

// ListChains lists, for iptables and ip6tables in the filter, nat and mangle tables, the
// chains named with one of prefixes: taken before the cluster starts, it is what down must
// leave alone.
func ListChains(ctx context.Context, prefixes ...string) (Chains, error) {
	out := Chains{}
	for _, bt := range tables {
		bin, table, _ := strings.Cut(bt, " ")
		rules, err := command.Output(ctx, bin, "-w", "-t", table, "-S")
		if err != nil {
			if bin == "ip6tables" {
				continue // no IPv6 netfilter on this host
			}
			return nil, fmt.Errorf("list %s rules: %w", table, err)
		}
		chains, _, err := Leftovers(string(rules), prefixes, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bt, err)
		}
		if len(chains) > 0 {
			out[bt] = chains
		}
	}
	return out, nil
}

// CleanChains removes, for iptables and ip6tables in the filter, nat and mangle tables, the
// chains named with one of prefixes except those in keep, after deleting every rule
// elsewhere that jumps to them. It is idempotent.
func CleanChains(ctx context.Context, keep Chains, prefixes ...string) error {
	var errs []error
	for _, bt := range tables {
		bin, table, _ := strings.Cut(bt, " ")
		if err := cleanTable(ctx, bin, table, prefixes, keep[bt]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func cleanTable(ctx context.Context, bin, table string, prefixes, keep []string) error {
	out, err := command.Output(ctx, bin, "-w", "-t", table, "-S")
	if err != nil {
		if bin == "ip6tables" {
			return nil // no IPv6 netfilter on this host: nothing can be left there
		}
		return fmt.Errorf("list %s rules: %w", table, err)
	}
	chains, jumps, err := Leftovers(string(out), prefixes, keep)
	if err != nil {
		return fmt.Errorf("%s -t %s: %w", bin, table, err)
	}
	var errs []error
	run := func(args ...string) {
		if _, err := command.Output(ctx, append([]string{bin, "-w", "-t", table}, args...)...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, j := range jumps {
		run(append([]string{"-D"}, j[1:]...)...)
	}
	for _, c := range chains {
		run("-F", c)
	}
	for _, c := range chains {
		run("-X", c)
	}
	return errors.Join(errs...)
}

// Leftovers parses `iptables -S` output: the chains named with one of prefixes and not in
// keep (the ones to remove), and the rules in every other chain (built-in, kept or foreign)
// that jump to one of them, as split argv starting with "-A".
func Leftovers(rules string, prefixes, keep []string) (chains []string, jumps [][]string, err error) {
	remove := map[string]bool{}
	var appends [][]string
	sc := bufio.NewScanner(strings.NewReader(rules))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-N "):
			if name := strings.TrimSpace(line[3:]); hasPrefix(name, prefixes) && !slices.Contains(keep, name) {
				chains = append(chains, name)
				remove[name] = true
			}
		case strings.HasPrefix(line, "-A "):
			args, err := SplitRule(line)
			if err != nil {
				return nil, nil, err
			}
			appends = append(appends, args)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	// Chains may be listed after rules that jump to them, so jumps are found in a second pass.
	for _, args := range appends {
		if len(args) < 2 || remove[args[1]] {
			continue // flushed with its chain
		}
		for i := 2; i+1 < len(args); i++ {
			if (args[i] == "-j" || args[i] == "-g") && remove[args[i+1]] {
				jumps = append(jumps, args)
				break
			}
		}
	}
	return chains, jumps, nil
}

// SplitRule splits one line of `iptables -S` into arguments, honouring the double quotes
// and backslash escapes iptables uses for comments.
func SplitRule(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			have = true
		case ch == '"':
			inQuote = !inQuote
			have = true
		case (ch == ' ' || ch == '\t') && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote in iptables rule %q", line)
	}
	if have {
		args = append(args, cur.String())
	}
	return args, nil
}

// Uplink returns the interface of the IPv4 default route and its first IPv4 address, read
// from /proc/net/route, so the node IP is discovered rather than configured.
func Uplink() (string, net.IP, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", nil, fmt.Errorf("read routing table: %w", err)
	}
	iface, err := DefaultRouteInterface(string(data))
	if err != nil {
		return "", nil, err
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return "", nil, fmt.Errorf("default route interface %s: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", nil, fmt.Errorf("addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return iface, ipn.IP.To4(), nil
		}
	}
	return "", nil, fmt.Errorf("default route interface %s has no IPv4 address; the host cluster needs one as its node IP", iface)
}

// DefaultRouteInterface finds the interface of the lowest-metric default route in the text
// of /proc/net/route.
func DefaultRouteInterface(table string) (string, error) {
	best, bestMetric := "", -1
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 8 {
			continue
		}
		// Fields: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		var metric int
		fmt.Sscan(f[6], &metric)
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	if best == "" {
		return "", errors.New("no IPv4 default route in /proc/net/route; the host cluster picks its node IP from the default route's interface")
	}
	return best, nil
}
