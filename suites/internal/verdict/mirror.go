package verdict

import (
	"errors"
	"fmt"
)

// Mirror category names used in mirror verdicts.
const (
	Mirrored    = "mirrored"
	NotMirrored = "not-mirrored"
)

// MirrorVerdict judges a mirror's delivery: mirrored[i] says whether the i-th request sent
// to the primary (in sending order) was seen by the mirror backend; fraction is the declared
// share (1 for a plain mirror, percent/100 or numerator/denominator otherwise). It is the
// share test with two categories, capped at the number of requests sent, so a fraction of 1
// fails on any missed request and 0 on any mirrored one.
func MirrorVerdict(fraction float64, mirrored []bool, cfg Config) (Verdict, error) {
	if !(fraction >= 0 && fraction <= 1) {
		return Verdict{}, fmt.Errorf("mirror fraction: got %g; want a fraction in [0, 1]", fraction)
	}
	if len(mirrored) == 0 {
		return Verdict{}, errors.New("mirror requests: got none; want at least one")
	}
	cfg.MaxRequests = len(mirrored)
	s, err := NewSequential([]Backend{{Name: Mirrored, Weight: fraction}, {Name: NotMirrored, Weight: 1 - fraction}}, cfg)
	if err != nil {
		return Verdict{}, fmt.Errorf("mirror verdict: %w", err)
	}
	for _, m := range mirrored {
		name := NotMirrored
		if m {
			name = Mirrored
		}
		if s.Add(name) {
			break
		}
	}
	s.Finish()
	return s.Verdict(), nil
}
