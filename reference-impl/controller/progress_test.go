package controller

import (
	"testing"
	"time"
)

// progress paces the progress lines of a long wait in a test: one line per period, the first
// one period after the start (a wait that ends sooner prints nothing). A poll loop calls due
// after every check, however often it checks.
type progress struct {
	start, next time.Time
	every       time.Duration
}

func newProgress(start time.Time, every time.Duration) *progress {
	return &progress{start: start, next: start.Add(every), every: every}
}

// due reports whether a progress line is due at now, and how long the wait has taken; a true
// answer moves the next line one period on (skipping periods a slow check overran).
func (p *progress) due(now time.Time) (time.Duration, bool) {
	if now.Before(p.next) {
		return 0, false
	}
	for !now.Before(p.next) {
		p.next = p.next.Add(p.every)
	}
	return now.Sub(p.start).Truncate(time.Second), true
}

// TestProgressOneLinePerPeriod polls every 100 ms for 2m10s, the way waitRoute does, and
// counts the lines: one per 10 s (13), not one per check inside each tenth second (the
// modulo check it replaces printed about 10 per 10 s).
func TestProgressOneLinePerPeriod(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		poll, wait time.Duration
		want       []time.Duration
	}{
		{name: "100ms polls for 35s", poll: 100 * time.Millisecond, wait: 35 * time.Second, want: []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second}},
		{name: "wait shorter than a period", poll: 100 * time.Millisecond, wait: 9900 * time.Millisecond},
		{name: "checks slower than the period", poll: 25 * time.Second, wait: 60 * time.Second, want: []time.Duration{25 * time.Second, 50 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProgress(start, 10*time.Second)
			var got []time.Duration
			for now := start; now.Sub(start) <= tc.wait; now = now.Add(tc.poll) {
				if d, ok := p.due(now); ok {
					got = append(got, d)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d progress lines %v; want %d %v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d says %v so far; want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
	p := newProgress(start, 10*time.Second)
	lines := 0
	for now := start; now.Sub(start) <= 130*time.Second; now = now.Add(100 * time.Millisecond) {
		if _, ok := p.due(now); ok {
			lines++
		}
	}
	if lines != 13 {
		t.Errorf("2m10s of 100 ms polls: got %d lines; want 13 (one per 10 s)", lines)
	}
}
