package timeline

import (
	"fmt"
	"time"
)

// Each predicate returns nil when it holds and otherwise an error that says what happened, what
// was wanted and prints the whole timeline, so a failed spec reads on its own.

func (t *Timeline) fail(format string, args ...any) error {
	return fmt.Errorf("%s; timeline (relative to %s):\n%s", fmt.Sprintf(format, args...), t.Origin.UTC().Format("15:04:05.000"), t)
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func (t *Timeline) firstRun(c string) (Run, bool) {
	runs := t.Runs(c)
	if len(runs) == 0 {
		return Run{}, false
	}
	return runs[0], true
}

func (t *Timeline) lastRun(c string) (Run, bool) {
	runs := t.Runs(c)
	if len(runs) == 0 {
		return Run{}, false
	}
	return runs[len(runs)-1], true
}

// StartsBefore holds when lhs reported "started" (serving) no later than rhs's process began
// ("starting"): rhs was not launched until lhs was up. It compares first runs.
func (t *Timeline) StartsBefore(lhs, rhs string) error {
	l, ok := t.firstRun(lhs)
	if !ok || l.Started.IsZero() {
		return t.fail("%s never reported %q; want it started before %s starts", lhs, KindStarted, rhs)
	}
	r, ok := t.firstRun(rhs)
	if !ok || r.Starting.IsZero() {
		return t.fail("%s never reported %q; want it to start after %s", rhs, KindStarting, lhs)
	}
	if r.Starting.Before(l.Started) {
		return t.fail("%s was starting at %s, %s before %s was started at %s; want %s to start only after %s has started",
			rhs, t.Rel(r.Starting), ms(l.Started.Sub(r.Starting)), lhs, t.Rel(l.Started), rhs, lhs)
	}
	return nil
}

// StartsAfterReady holds when rhs's process began only after lhs reported "ready" (for example
// after its startup delay, which a startupProbe waits for).
func (t *Timeline) StartsAfterReady(lhs, rhs string) error {
	l, ok := t.firstRun(lhs)
	if !ok || l.Ready.IsZero() {
		return t.fail("%s never reported %q; want it ready before %s starts", lhs, KindReady, rhs)
	}
	r, ok := t.firstRun(rhs)
	if !ok || r.Starting.IsZero() {
		return t.fail("%s never reported %q; want it to start after %s is ready", rhs, KindStarting, lhs)
	}
	if r.Starting.Before(l.Ready) {
		return t.fail("%s was starting at %s, %s before %s was ready at %s; want %s to start only after %s is ready",
			rhs, t.Rel(r.Starting), ms(l.Ready.Sub(r.Starting)), lhs, t.Rel(l.Ready), rhs, lhs)
	}
	return nil
}

// ExitsBefore holds when lhs's last run reported "exiting" before rhs's last run did.
func (t *Timeline) ExitsBefore(lhs, rhs string) error {
	l, ok := t.lastRun(lhs)
	if !ok || l.Exiting.IsZero() {
		return t.fail("%s never reported %q; want it to exit before %s", lhs, KindExiting, rhs)
	}
	r, ok := t.lastRun(rhs)
	if !ok || r.Exiting.IsZero() {
		return t.fail("%s never reported %q; want it to exit after %s", rhs, KindExiting, lhs)
	}
	if !l.Exiting.Before(r.Exiting) {
		return t.fail("%s exited at %s, %s after %s exited at %s; want %s to exit first",
			lhs, t.Rel(l.Exiting), ms(l.Exiting.Sub(r.Exiting)), rhs, t.Rel(r.Exiting), lhs)
	}
	return nil
}

// SigtermAfterExit holds when signalled got SIGTERM (its last run) only after exited's last run
// reported "exiting": the kubelet waited for exited before signalling the other.
func (t *Timeline) SigtermAfterExit(exited, signalled string) error {
	e, ok := t.lastRun(exited)
	if !ok || e.Exiting.IsZero() {
		return t.fail("%s never reported %q; want it to exit before %s gets SIGTERM", exited, KindExiting, signalled)
	}
	s, ok := t.lastRun(signalled)
	if !ok || s.Sigterm.IsZero() {
		return t.fail("%s never reported %q; want it to get SIGTERM after %s exits", signalled, KindSigterm, exited)
	}
	if s.Sigterm.Before(e.Exiting) {
		return t.fail("%s got SIGTERM at %s, %s before %s exited at %s; want SIGTERM only after %s has exited",
			signalled, t.Rel(s.Sigterm), ms(e.Exiting.Sub(s.Sigterm)), exited, t.Rel(e.Exiting), exited)
	}
	return nil
}

// interval is when a run was up: from "started" (or "starting") to "exiting" (or forever).
func (r Run) interval() (from, to time.Time) {
	from = r.Started
	if from.IsZero() {
		from = r.Starting
	}
	to = r.Exiting
	if to.IsZero() {
		to = time.Unix(1<<40, 0)
	}
	return from, to
}

// RunTogether holds when some run of lhs and some run of rhs were up at the same time for more
// than the Tolerance.
func (t *Timeline) RunTogether(lhs, rhs string) error {
	lr, rr := t.Runs(lhs), t.Runs(rhs)
	if len(lr) == 0 {
		return t.fail("%s never ran; want it to run together with %s", lhs, rhs)
	}
	if len(rr) == 0 {
		return t.fail("%s never ran; want it to run together with %s", rhs, lhs)
	}
	var best time.Duration
	for _, l := range lr {
		lf, lt := l.interval()
		for _, r := range rr {
			rf, rt := r.interval()
			overlap := earlier(lt, rt).Sub(later(lf, rf))
			best = max(best, overlap)
		}
	}
	if best <= t.Tolerance {
		return t.fail("%s and %s overlapped for at most %s; want more than the %s tolerance", lhs, rhs, ms(best), ms(t.Tolerance))
	}
	return nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// HasRestarted holds when c's process started at least twice.
func (t *Timeline) HasRestarted(c string) error {
	if n := t.Restarts(c); n < 1 {
		return t.fail("%s started %d time(s); want it restarted at least once", c, n+1)
	}
	return nil
}

// NotRestarted holds when c's process started exactly once.
func (t *Timeline) NotRestarted(c string) error {
	runs := t.Runs(c)
	switch {
	case len(runs) == 0:
		return t.fail("%s never started; want it started exactly once", c)
	case len(runs) > 1:
		return t.fail("%s started %d times; want it started exactly once (never restarted)", c, len(runs))
	}
	return nil
}

// Restarts is how many times c's process started again after its first run.
func (t *Timeline) Restarts(c string) int {
	return max(len(t.Runs(c))-1, 0)
}

// DoesntStart holds when c wrote no event at all.
func (t *Timeline) DoesntStart(c string) error {
	if runs := t.Runs(c); len(runs) > 0 {
		return t.fail("%s started at %s; want it not started", c, t.Rel(runs[0].Events[0].Time))
	}
	return nil
}

// ExitsBy holds when c's last run reported "exiting" no later than deadline plus the Tolerance.
func (t *Timeline) ExitsBy(c string, deadline time.Time) error {
	r, ok := t.lastRun(c)
	if !ok || r.Exiting.IsZero() {
		return t.fail("%s never reported %q; want it to exit by %s", c, KindExiting, t.Rel(deadline))
	}
	if r.Exiting.After(deadline.Add(t.Tolerance)) {
		return t.fail("%s exited at %s, %s after the deadline %s (tolerance %s); want it exited by then",
			c, t.Rel(r.Exiting), ms(r.Exiting.Sub(deadline)), t.Rel(deadline), ms(t.Tolerance))
	}
	return nil
}

// ExitsBeforeStart holds when lhs's last run reported "exiting" no later than rhs's first run
// began ("starting"), as a one-shot init container must before the next container starts.
func (t *Timeline) ExitsBeforeStart(lhs, rhs string) error {
	l, ok := t.lastRun(lhs)
	if !ok || l.Exiting.IsZero() {
		return t.fail("%s never reported %q; want it to exit before %s starts", lhs, KindExiting, rhs)
	}
	r, ok := t.firstRun(rhs)
	if !ok || r.Starting.IsZero() {
		return t.fail("%s never reported %q; want it to start after %s exits", rhs, KindStarting, lhs)
	}
	if r.Starting.Before(l.Exiting) {
		return t.fail("%s was starting at %s, %s before %s exited at %s; want %s to start only after %s has exited",
			rhs, t.Rel(r.Starting), ms(l.Exiting.Sub(r.Starting)), lhs, t.Rel(l.Exiting), rhs, lhs)
	}
	return nil
}

// Gap is how long after a's first event of kindA b's first event of kindB happened; ok is
// false when either is missing. Specs put gaps in their report messages.
func (t *Timeline) Gap(a, kindA, b, kindB string) (time.Duration, bool) {
	ea, okA := t.Find(a, kindA)
	eb, okB := t.Find(b, kindB)
	if !okA || !okB {
		return 0, false
	}
	return eb.Time.Sub(ea.Time), true
}
