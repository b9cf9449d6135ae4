package timeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ParseLine reads the echo-backend lifecycle line format:
//
//	<RFC 3339 time, milliseconds> <container> <event> [detail ...]
//
// e.g. "2026-11-26T07:40:00.123Z sidecar started addr=:9090". Lines whose first field is not a
// time are not events (ok is false), so mixed log output can be fed in whole.
func ParseLine(line string) (Event, bool, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return Event{}, false, nil
	}
	tm, err := time.Parse(time.RFC3339Nano, fields[0])
	if err != nil {
		return Event{}, false, nil
	}
	if len(fields) < 3 {
		return Event{}, false, errors.New("want <time> <container> <event> [detail]")
	}
	ev := Event{Time: tm, Container: fields[1], Kind: fields[2]}
	if len(fields) > 3 {
		ev.Detail = strings.Join(fields[3:], " ")
	}
	return ev, true, nil
}

// FormatLine writes ev in the format ParseLine reads; tests use it to record timelines.
func FormatLine(ev Event) string {
	s := fmt.Sprintf("%s %s %s", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), ev.Container, ev.Kind)
	if ev.Detail != "" {
		s += " " + ev.Detail
	}
	return s
}
