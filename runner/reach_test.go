package runner

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/impls"
)

// reachCluster is a cluster with an opinion on how its Gateways are reached (kind).
type reachCluster struct {
	fakeCluster
	mode, why string
	err       error
}

func (c *reachCluster) GatewayReach(context.Context) (string, string, error) {
	return c.mode, c.why, c.err
}

// TestAdjustReach checks the cluster's reach replaces the profile's status-address only:
// port-forward on kind where its network is not routed from here, the profile's choice kept
// otherwise.
func TestAdjustReach(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, profile string
		cl            Cluster
		want          string
		wantErr       bool
	}{
		{"kind on Docker Desktop", "status-address", &reachCluster{mode: "port-forward", why: "Docker Desktop runs its engine in a VM"}, "port-forward", false},
		{"kind on Linux", "status-address", &reachCluster{mode: "status-address", why: "local bridge"}, "status-address", false},
		{"profile chose nodeport", "nodeport", &reachCluster{mode: "port-forward"}, "nodeport", false},
		{"cluster without an opinion", "status-address", &fakeCluster{}, "status-address", false},
		{"docker info fails", "status-address", &reachCluster{err: errors.New("Cannot connect to the Docker daemon")}, "status-address", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			r := &run{cl: c.cl, out: &out}
			r.meta.ReachMode = string(impls.ReachMode(c.profile))
			err := r.adjustReach(context.Background())
			if (err != nil) != c.wantErr || r.meta.ReachMode != c.want {
				t.Fatalf("reach %q, error %v; want %q, error %v", r.meta.ReachMode, err, c.want, c.wantErr)
			}
			if c.want != c.profile && !strings.Contains(out.String(), "instead of the profile's") {
				t.Errorf("output %q; want the reason for the change", out.String())
			}
		})
	}
}
