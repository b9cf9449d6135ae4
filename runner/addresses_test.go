package runner

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/impls"
)

// TestStaticAddresses: the usable address is the last assignable address of the cluster's
// pool (the host cluster's 10.0.1.0/24, kind's .200-.250 range), the unusable one a
// documentation address of the same family.
func TestStaticAddresses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pool, usable, unusable, err string
	}{
		{"10.0.1.0/24", "10.0.1.254", "192.0.2.1", ""},
		{"172.18.255.200-172.18.255.250", "172.18.255.250", "192.0.2.1", ""},
		{"10.0.1.7/16", "10.0.255.254", "192.0.2.1", ""},
		{"fd00:10::/120", "fd00:10::ff", "2001:db8::1", ""},
		{"10.0.1.0/33", "", "", "want a CIDR or an address range"},
		{"10.0.1.9-10.0.1.1", "", "", "want a CIDR or an address range"},
	}
	for _, c := range cases {
		t.Run(c.pool, func(t *testing.T) {
			t.Parallel()
			u, nu, err := staticAddresses(c.pool)
			if u != c.usable || nu != c.unusable || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Errorf("staticAddresses(%q) = %q, %q, %v; want %q, %q, error containing %q", c.pool, u, nu, err, c.usable, c.unusable, c.err)
			}
		})
	}
}

type pooledCluster struct {
	fakeCluster
	pool string
}

func (p *pooledCluster) LoadBalancerPool(context.Context) (string, error) { return p.pool, nil }

// TestFillStaticAddresses: the run fills the suite's addresses from the pool only when the
// profile sets neither, and not on a cluster without a pool.
func TestFillStaticAddresses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, pool, profileUsable string
		wantUsable, wantUnusable  string
		wantSkip                  bool
	}{
		{"from the pool", "10.0.1.0/24", "", "10.0.1.254", "192.0.2.1", false},
		{"the profile's own", "10.0.1.0/24", "10.0.1.9", "10.0.1.9", "", false},
		{"the profile's own, no pool", "", "10.0.1.9", "10.0.1.9", "", false},
		// An existing cluster: nothing to give the test, which would then fail any
		// implementation that claims the feature.
		{"no pool", "", "", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			prof := &impls.Profile{}
			prof.Conformance.UsableAddress = c.profileUsable
			var out bytes.Buffer
			r := &run{cl: &pooledCluster{pool: c.pool}, o: Options{Profile: prof}, out: &out}
			if err := r.fillStaticAddresses(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := r.o.Profile.Conformance
			if got.UsableAddress != c.wantUsable || got.UnusableAddress != c.wantUnusable {
				t.Errorf("usable %q, unusable %q; want %q, %q (output %q)", got.UsableAddress, got.UnusableAddress, c.wantUsable, c.wantUnusable, out.String())
			}
			if skipped := slices.Contains(got.SkipTests, "GatewayStaticAddresses"); skipped != c.wantSkip {
				t.Errorf("GatewayStaticAddresses in skipTests %v: %v; want %v", got.SkipTests, skipped, c.wantSkip)
			}
			if len(prof.Conformance.SkipTests) != 0 {
				t.Errorf("the caller's profile changed: skipTests %v", prof.Conformance.SkipTests)
			}
			if prof.Conformance.UsableAddress != c.profileUsable {
				t.Errorf("the caller's profile changed: usable %q; want %q", prof.Conformance.UsableAddress, c.profileUsable)
			}
		})
	}
}
