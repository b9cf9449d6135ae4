package verdict

import (
	"math"
	"regexp"
	"testing"
)

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// Reference values from R: binom.test(k, n)$conf.int and prop.test(k, n, correct=FALSE).
func TestIntervals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		got    Interval
		lo, hi float64
	}{
		{"clopper-pearson 10/100", ClopperPearson(10, 100, 0.05), 0.04900469, 0.17622260},
		{"clopper-pearson 0/50", ClopperPearson(0, 50, 0.05), 0, 0.07112174},
		{"clopper-pearson 50/50", ClopperPearson(50, 50, 0.05), 0.92887826, 1},
		{"wilson 10/100", Wilson(10, 100, 0.05), 0.05522914, 0.17436566},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if math.Abs(tc.got.Lo-tc.lo) > 1e-6 || math.Abs(tc.got.Hi-tc.hi) > 1e-6 {
				t.Errorf("got [%.8f, %.8f]; want [%.8f, %.8f]", tc.got.Lo, tc.got.Hi, tc.lo, tc.hi)
			}
		})
	}
}

func TestChiSquare(t *testing.T) {
	t.Parallel()
	stat, df, p := ChiSquareGOF([]int{55, 45}, []float64{0.5, 0.5})
	if math.Abs(stat-1) > 1e-12 || df != 1 || math.Abs(p-0.3173105) > 1e-6 {
		t.Errorf("got stat %g df %d p %g; want 1, 1, 0.3173105", stat, df, p)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{levelString(0.9999), "99.99%"},
		{levelString(0.99), "99%"},
		{commas(4000), "4,000"},
		{commas(123), "123"},
		{commas(1234567), "1,234,567"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q; want %q", tc.got, tc.want)
		}
	}
}
