package verdict

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Mirror category names used in mirror verdicts.
const (
	Mirrored    = "mirrored"
	NotMirrored = "not-mirrored"
)

// MirrorRequests is how many requests a mirror check of the declared fraction should send:
// for a partial mirror the most its share test can use (so that it can pass with the stated
// power), and at least floor.
func MirrorRequests(fraction float64, cfg Config, floor int) (int, error) {
	if fraction <= 0 || fraction >= 1 {
		return floor, nil
	}
	cfg.MaxRequests = 0
	s, err := NewSequential([]Backend{{Name: Mirrored, Weight: fraction}, {Name: NotMirrored, Weight: 1 - fraction}}, cfg)
	if err != nil {
		return 0, fmt.Errorf("mirror requests: %w", err)
	}
	return max(floor, s.Needed()), nil
}

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
	cfg.MaxRequests, cfg.LeakRequests = len(mirrored), len(mirrored)
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
			v.Message = fmt.Sprintf("mirrored share %.2f%% consistent with the declared %s (n=%s requests): no evidence of a skew; a mirror copying %s would have failed with probability >= %.4f, and a correct one fails with probability %.2g (exact; expected %s requests, at most %s)",
				100*v.Backends[0].Observed, pctText(fraction), commas(v.N), mirroredSkews(s), v.Power, v.AchievedAlpha,
				commas(int(math.Round(v.ExpectedN))), commas(s.needed))
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
		v.Message = strings.ReplaceAll(v.Message, "a correct split fails it", "a correct mirror fails it")
	}
	return v, nil
}

// mirroredSkews says which mirrored shares the test is designed to catch, "22% or 28%",
// whichever of the two categories is the tested (smaller) one.
func mirroredSkews(s *Sequential) string {
	var alts []float64
	for _, sd := range s.sides {
		alt := sd.design.P1
		if !sd.upper {
			alt = 1 - sd.design.P1
		}
		if s.backends[sd.backend].Name == NotMirrored {
			alt = 1 - alt
		}
		alts = append(alts, alt)
	}
	sort.Float64s(alts)
	parts := make([]string, len(alts))
	for i, a := range alts {
		parts[i] = pctText(a)
	}
	return strings.Join(parts, " or ")
}
