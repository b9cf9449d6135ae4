package verdict

import (
	"testing"
)

// TestDesignTable prints the exact error rates and expected request counts of the default
// design for the splits the canary suite uses, and checks every one meets its alpha.
func TestDesignTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bs   []Backend
	}{
		{"90/10", []Backend{{"a", 90}, {"b", 10}}},
		{"50/50", []Backend{{"a", 50}, {"b", 50}}},
		{"70/30/0", []Backend{{"a", 70}, {"b", 30}, {"c", 0}}},
		{"99/1", []Backend{{"a", 99}, {"b", 1}}},
		{"50/30/20", []Backend{{"a", 50}, {"b", 30}, {"c", 20}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSequential(tc.bs, Config{})
			if err != nil {
				t.Fatal(err)
			}
			v := s.Verdict()
			worstN := 0.0
			for _, st := range v.Tests {
				worstN = max(worstN, st.ExpectedNCorrect)
			}
			t.Logf("%-8s exact false-failure %.3g (<= %.0g), power vs 3-pt skew %.4f, slowest side decides a correct split in %.0f requests on average; %d one-sided tests",
				tc.name, v.AchievedAlpha, v.Alpha, v.Power, worstN, len(v.Tests))
			for _, w := range v.Warnings {
				t.Logf("         %s", w)
			}
			if v.AchievedAlpha > v.Alpha {
				t.Errorf("exact false-failure: got %.3g; want <= %g", v.AchievedAlpha, v.Alpha)
			}
			if len(v.Tests) == 0 {
				t.Errorf("no share tests designed for %s", tc.name)
			}
		})
	}
}
