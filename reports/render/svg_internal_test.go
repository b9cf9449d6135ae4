package render

import "testing"

func TestConfidenceLabelNeverRoundsTo100(t *testing.T) {
	t.Parallel()
	for alpha, want := range map[float64]string{1e-4: "99.99%", 0.05: "95%", 0.01: "99%", 1e-6: "99.9999%", 0: "confidence"} {
		if got := confidence(alpha); got != want {
			t.Errorf("confidence(%g) = %q; want %q", alpha, got, want)
		}
	}
}
