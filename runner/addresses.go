package runner

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// LoadBalancerPooler is a cluster that gatecheck gave a load balancer (MetalLB): it knows the
// pool LoadBalancer Services get addresses from, "" when it has none (an existing cluster).
type LoadBalancerPooler interface {
	LoadBalancerPool(ctx context.Context) (string, error)
}

// unusableAddress4 and unusableAddress6 are what the GatewayStaticAddresses test gets as the
// address no Gateway can be given: documentation addresses (RFC 5737 TEST-NET-1, RFC 3849),
// in no pool gatecheck creates.
const (
	unusableAddress4 = "192.0.2.1"
	unusableAddress6 = "2001:db8::1"
)

// staticAddresses are the GatewayStaticAddresses test's usable and unusable addresses on a
// cluster whose load balancer assigns from pool (a CIDR or a "first-last" range, as MetalLB's
// IPAddressPool takes it): the pool's last address, which MetalLB, assigning from the front,
// gives another Service last (never a .255: gatecheck's pools avoid those), and a documentation
// address of the same family.
func staticAddresses(pool string) (usable, unusable string, err error) {
	var last netip.Addr
	if first, end, ok := strings.Cut(pool, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(end))
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() || b.Less(a) {
			return "", "", fmt.Errorf("load balancer pool %q: want a CIDR or an address range first-last", pool)
		}
		last = b
	} else {
		p, err := netip.ParsePrefix(pool)
		if err != nil {
			return "", "", fmt.Errorf("load balancer pool %q: want a CIDR or an address range first-last", pool)
		}
		p = p.Masked()
		b := p.Addr().AsSlice()
		for i := p.Bits(); i < len(b)*8; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	if last.Is4() && last.As4()[3] == 255 {
		last = last.Prev()
	}
	unusable = unusableAddress4
	if last.Is6() {
		unusable = unusableAddress6
	}
	return last.String(), unusable, nil
}

// staticAddressesTest is the upstream test that needs usable and unusable addresses.
const staticAddressesTest = "GatewayStaticAddresses"

// fillStaticAddresses gives the upstream suite usable and unusable addresses from the
// cluster's load balancer pool when the profile names neither (README: "Testing another
// implementation"); a profile's own values are kept. On a cluster without a pool of
// gatecheck's (an existing cluster) and a profile that names none, the run cannot give the
// GatewayStaticAddresses test what it needs: without them the test fails any implementation
// that claims the feature ("expected 3 addresses ... got 1"), so it is skipped, saying why.
func (r *run) fillStaticAddresses(ctx context.Context) error {
	c := r.o.Profile.Conformance
	if c.UsableAddress != "" || c.UnusableAddress != "" {
		return nil
	}
	pool := ""
	if lp, ok := r.cl.(LoadBalancerPooler); ok {
		var err error
		if pool, err = lp.LoadBalancerPool(ctx); err != nil {
			return fmt.Errorf("cluster %s: load balancer pool: %w", r.cl.Name(), err)
		}
	}
	if pool == "" {
		if c.RunTest == staticAddressesTest || slices.Contains(c.SkipTests, staticAddressesTest) {
			return nil
		}
		p := *r.o.Profile
		p.Conformance.SkipTests = append(slices.Clone(c.SkipTests), staticAddressesTest)
		r.o.Profile = &p
		fmt.Fprintf(r.out, "  %s skipped: cluster %s has no load balancer pool of gatecheck's and the profile sets no conformance.usableAddress/unusableAddress\n", staticAddressesTest, r.cl.Name())
		return nil
	}
	usable, unusable, err := staticAddresses(pool)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", r.cl.Name(), err)
	}
	p := *r.o.Profile
	p.Conformance.UsableAddress, p.Conformance.UnusableAddress = usable, unusable
	r.o.Profile = &p
	fmt.Fprintf(r.out, "  static addresses (GatewayStaticAddresses): usable %s, the last of the load balancer pool %s; unusable %s, in no pool\n", usable, pool, unusable)
	return nil
}
