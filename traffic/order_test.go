package traffic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/traffic/splittest"
	"github.com/gatecheck/gatecheck/verdict"
)

// TestSampleBackendsSendOrder: outcomes enter the test in the order the probes were sent.
// The probe serves exactly 90/10 (every 10th probe is v3) and v3 answers slowly; fed in
// completion order, the v3 answers still in flight when the test stops would be missing
// from its counts, so the v3 count at the decision would fall short of n/10.
func TestSampleBackendsSendOrder(t *testing.T) {
	t.Parallel()
	seq, err := verdict.NewSequential([]verdict.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}, verdict.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var issued atomic.Int64
	probe := func(ctx context.Context) (string, error) {
		if issued.Add(1)%10 == 0 {
			select {
			case <-time.After(3 * time.Millisecond):
			case <-ctx.Done():
			}
			return "v3", nil
		}
		return "v2", nil
	}
	v := SampleBackends(context.Background(), seq, verdict.DefaultMaxRequests, 8, "connection", probe, func(err error) string { return err.Error() })
	if v.Unit != "connection" {
		t.Errorf("unit: got %q; want connection", v.Unit)
	}
	got, want := v.Backends[1].Count, v.N/10
	t.Logf("%s: v3 %d of %d", v.Decision, got, v.N)
	if v.Decision != verdict.Pass || got != want {
		t.Errorf("got %s with v3 %d of %d; want pass with exactly %d (send order)", v.Decision, got, v.N, want)
	}
}

// TestDriverRecordsConnections: every result names its connection: a keep-alive run uses
// at most Concurrency connections, a fresh-connection run one per request.
func TestDriverRecordsConnections(t *testing.T) {
	t.Parallel()
	for _, fresh := range []bool{false, true} {
		sp := splittest.New([]splittest.Backend{{Name: "a", Weight: 1}}, splittest.Options{})
		d := &Driver{URL: sp.URL, Concurrency: 4, FreshConnections: fresh}
		conns := map[string]int{}
		_, err := d.Run(t.Context(), Limit{Requests: 200}, func(r Result) bool {
			if r.Conn == "" {
				t.Errorf("result %d: no connection recorded", r.Seq)
			}
			conns[r.Conn]++
			return false
		})
		sp.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !fresh && len(conns) > 4 {
			t.Errorf("keep-alive: got %d connections; want <= 4", len(conns))
		}
		if fresh && len(conns) < 150 {
			// Local ports can be reused once a connection closes, so allow a few repeats.
			t.Errorf("fresh connections: got %d distinct; want about 200", len(conns))
		}
		t.Logf("fresh=%v: %d distinct connections over 200 requests", fresh, len(conns))
	}
}
