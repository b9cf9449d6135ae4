package verdict

import (
	"errors"
	"fmt"
	"strings"
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
	v := s.Verdict()
	if v.Decision == Pass {
		switch fraction {
		case 1:
			v.Message = fmt.Sprintf("all %s requests reached the mirror (a miss rate above %.2g%% would show with probability %.2f)",
				commas(v.N), 100*leakBound(v.N, s.cfg.Power), s.cfg.Power)
		case 0:
			v.Message = fmt.Sprintf("none of %s requests reached the mirror, as declared", commas(v.N))
		default:
			v.Message = fmt.Sprintf("mirrored share %.1f%% is within ±%.1f pts of the declared %.1f%% (n=%s; false-failure <= %.2g, power %.3f against a %.1f-pt skew)",
				100*v.Backends[0].Observed, 100*s.cfg.Tolerance, 100*fraction, commas(v.N), v.AchievedAlpha, v.Power, 100*s.cfg.Delta)
		}
	}
	if v.Decision != Fail {
		return v, nil
	}
	// Say it in mirror terms rather than as a two-backend split.
	// The zero-weight check stops at the first offending request; count over all of them.
	missed, extra, first := 0, 0, -1
	for i, m := range mirrored {
		if !m {
			missed++
			if first < 0 {
				first = i + 1
			}
		} else {
			extra++
		}
	}
	switch fraction {
	case 1:
		v.Message = fmt.Sprintf("%s of %s requests never reached the mirror (first: request %d); a full mirror must copy every request",
			commas(missed), commas(len(mirrored)), first)
	case 0:
		v.Message = fmt.Sprintf("%s of %s requests reached the mirror though 0%% is declared", commas(extra), commas(len(mirrored)))
	default:
		v.Message = strings.Replace(v.Message, "backend "+Mirrored+":", "mirrored share:", 1)
		v.Message = strings.Replace(v.Message, "backend "+NotMirrored+":", "share not mirrored:", 1)
	}
	return v, nil
}
