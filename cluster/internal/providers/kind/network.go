package kind

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// The kind network is the container network kind attaches its nodes to ("kind"; override
// KIND_EXPERIMENTAL_DOCKER_NETWORK). MetalLB's pool on kind is a range of it, so the speaker
// can answer ARP for pool addresses on the same L2 segment as the nodes.
const NetworkName = "kind"

// networkInspect is the part of `docker network inspect` (Docker's NetworkResource) and
// `podman network inspect` (netavark's Network) the pool is computed from.
type networkInspect struct {
	// Docker
	Name string
	IPAM struct {
		Config []struct{ Subnet, Gateway string }
	}
	Containers map[string]struct{ Name, IPv4Address string }
	// Podman (lower-case keys; encoding/json matches them case-insensitively, so the two
	// formats share fields where names agree)
	Subnets []struct{ Subnet, Gateway string }
}

// PoolFromNetworkInspect computes MetalLB's pool on kind from the output of
// `docker network inspect kind` or `podman network inspect kind`: addresses .200-.250 of the
// last /24 of the network's first IPv4 subnet. Docker and Podman hand out container
// addresses from the bottom of the subnet, so the top stays free (the range kind's own
// LoadBalancer guide uses). It refuses a subnet smaller than a /24 and a range that holds a
// container's address.
func PoolFromNetworkInspect(data []byte) (string, error) {
	var nets []networkInspect
	if err := json.Unmarshal(data, &nets); err != nil {
		return "", fmt.Errorf("parse network inspect output: %w", err)
	}
	if len(nets) != 1 {
		return "", fmt.Errorf("network inspect output describes %d networks; want 1", len(nets))
	}
	n := nets[0]
	var subnets []string
	for _, c := range n.IPAM.Config {
		subnets = append(subnets, c.Subnet)
	}
	for _, s := range n.Subnets {
		subnets = append(subnets, s.Subnet)
	}
	var prefix netip.Prefix
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("network %s: subnet %q: %w", n.Name, s, err)
		}
		if p.Addr().Is4() {
			prefix = p.Masked()
			break
		}
	}
	if !prefix.IsValid() {
		return "", fmt.Errorf("network %s has no IPv4 subnet (subnets %v); MetalLB's pool on kind is an IPv4 range of it", n.Name, subnets)
	}
	if prefix.Bits() > 24 {
		return "", fmt.Errorf("network %s: IPv4 subnet %s is smaller than a /24; recreate it larger (docker network rm %s) or set the pool yourself", n.Name, prefix, n.Name)
	}
	// The last /24 of the subnet: all host bits set, then the last octet cleared.
	last := prefix.Addr().As4()
	hostBits := 32 - prefix.Bits()
	v := uint32(last[0])<<24 | uint32(last[1])<<16 | uint32(last[2])<<8 | uint32(last[3])
	v |= (1<<hostBits - 1)
	v &^= 0xff
	at := func(octet uint32) netip.Addr {
		x := v | octet
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	first, end := at(200), at(250)
	for _, c := range n.Containers {
		p, err := netip.ParsePrefix(c.IPv4Address)
		if err != nil {
			continue
		}
		if a := p.Addr(); first.Compare(a) <= 0 && a.Compare(end) <= 0 {
			return "", fmt.Errorf("network %s: container %s has %s, inside the pool %s-%s", n.Name, c.Name, a, first, end)
		}
	}
	return first.String() + "-" + end.String(), nil
}

// Reach is how the runner reaches a Gateway's address on kind.
type Reach string

const (
	// ReachAddress: the runner dials the Gateway's LoadBalancer address on the kind network,
	// which is a bridge on this machine (Docker Engine or rootful Podman on Linux).
	ReachAddress Reach = "status-address"
	// ReachPortForward: the kind network lives in a VM or a rootless network namespace
	// (Docker Desktop, Podman machine, rootless engines), where its addresses are not routed
	// from this machine: the runner port-forwards to the Gateway's pods.
	ReachPortForward Reach = "port-forward"
)

// engineInfo is the part of `docker info --format '{{json .}}'` (Docker's system.Info)
// reach is decided from.
type engineInfo struct {
	OperatingSystem string
	OSType          string
	SecurityOptions []string
}

// ReachFromEngineInfo decides how the runner on an OS (runtime.GOOS) reaches LoadBalancer
// addresses on the kind network, from `docker info --format '{{json .}}'`, and says why.
func ReachFromEngineInfo(goos string, dockerInfo []byte) (Reach, string, error) {
	var info engineInfo
	if err := json.Unmarshal(dockerInfo, &info); err != nil {
		return "", "", fmt.Errorf("parse docker info output: %w", err)
	}
	switch {
	case goos != "linux":
		return ReachPortForward, fmt.Sprintf("on %s the container engine runs in a VM; the kind network is not routed from here", goos), nil
	case strings.Contains(info.OperatingSystem, "Docker Desktop"):
		return ReachPortForward, "Docker Desktop runs its engine in a VM; the kind network is not routed from here", nil
	}
	for _, o := range info.SecurityOptions {
		if strings.Contains(o, "name=rootless") {
			return ReachPortForward, "a rootless engine keeps the kind network in its own network namespace", nil
		}
	}
	return ReachAddress, fmt.Sprintf("the kind network is a bridge on this machine (%s)", info.OperatingSystem), nil
}
