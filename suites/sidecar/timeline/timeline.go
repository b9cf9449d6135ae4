package timeline

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Event kinds the echo-backend lifecycle mode writes. Other kinds are custom events (for
// example the outcome of the outbound request made at start).
const (
	KindStarting = "starting"
	KindStarted  = "started"
	KindReady    = "ready"
	KindSigterm  = "sigterm"
	KindExiting  = "exiting"
)

// DefaultTolerance is the slack for "simultaneous", as in Kubernetes' node e2e lifecycle tests.
const DefaultTolerance = 500 * time.Millisecond

// Event is one lifecycle line a container wrote.
type Event struct {
	Time      time.Time
	Container string
	Kind      string
	// Detail is the rest of the line (custom fields such as an exit code or a request outcome).
	Detail string
}

// ParseFunc turns one line into an Event. ok is false for lines that are not lifecycle events
// (other log output); err is for lines that claim to be events but are malformed.
type ParseFunc func(line string) (ev Event, ok bool, err error)

// Parse reads every event line from r, in file order. source names r in errors.
func Parse(source string, r io.Reader, parse ParseFunc) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		ev, ok, err := parse(line)
		if err != nil {
			return out, fmt.Errorf("%s line %d %q: %w", source, n, line, err)
		}
		if ok {
			out = append(out, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read %s: %w", source, err)
	}
	return out, nil
}

// Merge joins event lists from several sources (the shared file, each container's logs,
// previous instances' logs), drops exact duplicates (the same line read twice) and sorts by time;
// events at the same millisecond keep their source order.
func Merge(lists ...[]Event) []Event {
	seen := map[Event]bool{}
	var out []Event
	for _, l := range lists {
		for _, e := range l {
			k := e
			k.Time = e.Time.UTC()
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out
}

// Timeline is the merged, time-ordered lifecycle of one Pod's containers.
type Timeline struct {
	Events []Event
	// Origin is the zero of relative times in messages and reports (the Pod's creation).
	Origin time.Time
	// Tolerance is the slack for "simultaneous": two containers run together only if they
	// overlap by more than Tolerance, and a deadline is met by events up to Tolerance after it.
	// Orderings are strict: every event is stamped by the same node clock.
	Tolerance time.Duration
}

// New builds a Timeline from event lists; a zero origin means the first event.
func New(origin time.Time, tolerance time.Duration, lists ...[]Event) *Timeline {
	t := &Timeline{Events: Merge(lists...), Origin: origin, Tolerance: tolerance}
	if t.Origin.IsZero() && len(t.Events) > 0 {
		t.Origin = t.Events[0].Time
	}
	return t
}

// Run is one process lifetime of a container: from a "starting" event to the next one.
// Times are zero when the event is missing.
type Run struct {
	Starting, Started, Ready, Sigterm, Exiting time.Time
	Events                                     []Event
}

// Runs splits a container's events into process lifetimes. Events before the first "starting"
// (a truncated log) form a run of their own.
func (t *Timeline) Runs(container string) []Run {
	var runs []Run
	for _, e := range t.Events {
		if e.Container != container {
			continue
		}
		if e.Kind == KindStarting || len(runs) == 0 {
			runs = append(runs, Run{})
		}
		r := &runs[len(runs)-1]
		r.Events = append(r.Events, e)
		var slot *time.Time
		switch e.Kind {
		case KindStarting:
			slot = &r.Starting
		case KindStarted:
			slot = &r.Started
		case KindReady:
			slot = &r.Ready
		case KindSigterm:
			slot = &r.Sigterm
		case KindExiting:
			slot = &r.Exiting
		}
		if slot != nil && slot.IsZero() {
			*slot = e.Time
		}
	}
	return runs
}

// Containers lists the container names in order of their first event.
func (t *Timeline) Containers() []string {
	var out []string
	for _, e := range t.Events {
		if !slices.Contains(out, e.Container) {
			out = append(out, e.Container)
		}
	}
	return out
}

// Find returns the first event of container with kind, if any.
func (t *Timeline) Find(container, kind string) (Event, bool) {
	for _, e := range t.Events {
		if e.Container == container && e.Kind == kind {
			return e, true
		}
	}
	return Event{}, false
}

// Rel formats tm relative to the origin, e.g. "+1.234s".
func (t *Timeline) Rel(tm time.Time) string {
	if tm.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%+.3fs", tm.Sub(t.Origin).Seconds())
}

// String prints one event per line with its time relative to the origin.
func (t *Timeline) String() string {
	var b strings.Builder
	width := 0
	for _, c := range t.Containers() {
		width = max(width, len(c))
	}
	for _, e := range t.Events {
		fmt.Fprintf(&b, "  %9s  %-*s  %s", t.Rel(e.Time), width, e.Container, e.Kind)
		if e.Detail != "" {
			fmt.Fprintf(&b, " %s", e.Detail)
		}
		b.WriteByte('\n')
	}
	if len(t.Events) == 0 {
		b.WriteString("  (no events)\n")
	}
	return b.String()
}
