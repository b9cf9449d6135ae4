package canary

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
)

// stream simulates responses 5 ms apart: before switchAt from a splitter with v2 share
// before, then with share after.
func stream(n, switchAt int, before, after float64, seed uint64) ([]stamped, time.Time) {
	rng := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Unix(0, 0)
	out := make([]stamped, n)
	for i := range out {
		p := before
		if i >= switchAt {
			p = after
		}
		b := "v1"
		if rng.Float64() < p {
			b = "v2"
		}
		out[i] = stamped{t0.Add(time.Duration(i) * 5 * time.Millisecond), traffic.Result{Status: 200, Backend: b}}
	}
	return out, t0.Add(time.Duration(switchAt) * 5 * time.Millisecond)
}

func TestShiftDetectors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		detect        func([]stamped) (time.Time, bool)
		before, after float64
		// fires says whether the detector must fire; when it does, it must fire after the
		// switch and within lag responses of it.
		fires bool
		lag   int
	}{
		{"window sees 90/10 -> 50/50", windowAt, 0.1, 0.5, true, shiftWindow},
		{"window stays quiet under 90/10", windowAt, 0.1, 0.1, false, 0},
		{"run sees 50/50 -> 0/100", runAt, 0.5, 1, true, shiftRun},
		{"run stays quiet under 50/50", runAt, 0.5, 0.5, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(100) {
				rs, switched := stream(3000, 1000, c.before, c.after, seed)
				at, ok := c.detect(rs)
				if ok != c.fires {
					t.Fatalf("seed %d: fired %v at %s; want fired %v", seed, ok, at, c.fires)
				}
				if !ok {
					continue
				}
				// runAt reports the run's first response, which can be (by chance) a v2
				// answered a little before the switch; the window fires only after it.
				earliest := switched.Add(-40 * 5 * time.Millisecond)
				latest := switched.Add(time.Duration(c.lag) * 5 * time.Millisecond)
				if at.Before(earliest) || at.After(latest) {
					t.Fatalf("seed %d: fired at %s; want within [%s, %s]", seed, at.Sub(time.Unix(0, 0)), earliest.Sub(time.Unix(0, 0)), latest.Sub(time.Unix(0, 0)))
				}
			}
		})
	}
}
