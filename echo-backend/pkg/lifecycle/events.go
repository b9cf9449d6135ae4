// Package lifecycle is the lifecycle mode of echo-backend, for the sidecar suite: a process
// that appends millisecond-stamped events (starting, started, ready, sigterm, exiting and
// custom ones) to a shared file and stdout, with configurable startup, readiness, termination
// and crash behaviour, and an optional outbound request at start.
package lifecycle

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event names written by Run. Custom events use any other single word.
const (
	EventStarting    = "starting"
	EventStarted     = "started"
	EventReady       = "ready"
	EventSIGTERM     = "sigterm"
	EventExiting     = "exiting"
	EventOutboundOK  = "outbound-ok"
	EventOutboundErr = "outbound-fail"
)

// Event is one line of the events file:
//
//	<unix-ms> <RFC3339 UTC, ms> <container> <event>[ key=value ...]
//
// e.g. "1764142500123 2026-11-26T07:35:00.123Z app ready" or
// "1764142500456 2026-11-26T07:35:00.456Z app exiting code=0 reason=sigterm".
type Event struct {
	Time      time.Time
	Container string
	Name      string
	// Fields holds the key=value pairs after the name; values never contain spaces.
	Fields map[string]string
}

// String formats e as one events-file line (without the newline).
func (e Event) String() string {
	var b strings.Builder
	t := e.Time.UTC()
	b.WriteString(strconv.FormatInt(t.UnixMilli(), 10))
	b.WriteByte(' ')
	b.WriteString(t.Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteByte(' ')
	b.WriteString(e.Container)
	b.WriteByte(' ')
	b.WriteString(e.Name)
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(sanitize(e.Fields[k]))
	}
	return b.String()
}

// sanitize keeps a field value to one space-free token so lines stay parseable.
func sanitize(v string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return '_'
		}
		return r
	}, v)
}

// ParseEvent parses one events-file line.
func ParseEvent(line string) (Event, error) {
	parts := strings.Fields(line)
	if len(parts) < 4 {
		return Event{}, fmt.Errorf("event line %q: got %d fields; want at least 4 (<unix-ms> <time> <container> <event>)", line, len(parts))
	}
	ms, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("event line %q: unix milliseconds %q: %w", line, parts[0], err)
	}
	e := Event{Time: time.UnixMilli(ms).UTC(), Container: parts[2], Name: parts[3], Fields: map[string]string{}}
	for _, kv := range parts[4:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Event{}, fmt.Errorf("event line %q: field %q: want key=value", line, kv)
		}
		e.Fields[k] = v
	}
	return e, nil
}

// ReadEvents parses every non-empty line of r, in order.
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		e, err := ParseEvent(sc.Text())
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// recorder appends events to the file and stdout, one write per line each.
type recorder struct {
	mu        sync.Mutex
	container string
	file      *os.File
	stdout    io.Writer
	now       func() time.Time
}

func newRecorder(container, path string, stdout io.Writer) (*recorder, error) {
	r := &recorder{container: container, stdout: stdout, now: time.Now}
	if path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open events file %s: %w", path, err)
		}
		r.file = f
	}
	return r, nil
}

// emit writes one event; kv alternates keys and values.
func (r *recorder) emit(name string, kv ...string) Event {
	e := Event{Time: r.now(), Container: r.container, Name: name, Fields: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Fields[kv[i]] = kv[i+1]
	}
	line := []byte(e.String() + "\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		// O_APPEND and one write per line keep lines whole when several containers share the file.
		_, _ = r.file.Write(line)
	}
	if r.stdout != nil {
		_, _ = r.stdout.Write(line)
	}
	return e
}

func (r *recorder) close() error {
	if r.file == nil {
		return nil
	}
	return r.file.Close()
}
