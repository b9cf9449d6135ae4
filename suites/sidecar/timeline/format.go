package timeline

import (
	"sort"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
)

// ParseLine reads echo-backend's lifecycle line format with echo-backend's own parser:
//
//	<unix-ms> <RFC 3339 time, ms> <container> <event> [key=value ...]
//
// e.g. "1764142500123 2026-11-26T07:35:00.123Z app exiting code=0 reason=sigterm". The
// key=value fields become Detail, sorted by key. Lines whose first field is not a number are
// other output on the container's stdout/stderr (ok is false), so whole logs can be fed in.
func ParseLine(line string) (Event, bool, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Event{}, false, nil
	}
	if _, err := strconv.ParseInt(f[0], 10, 64); err != nil {
		return Event{}, false, nil
	}
	e, err := lifecycle.ParseEvent(line)
	if err != nil {
		return Event{}, false, err
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	detail := make([]string, 0, len(keys))
	for _, k := range keys {
		detail = append(detail, k+"="+e.Fields[k])
	}
	return Event{Time: e.Time, Container: e.Container, Kind: e.Name, Detail: strings.Join(detail, " ")}, true, nil
}

// FormatLine writes ev as echo-backend would; Detail must be space-separated key=value pairs.
func FormatLine(ev Event) string {
	fields := map[string]string{}
	for _, kv := range strings.Fields(ev.Detail) {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	return lifecycle.Event{Time: ev.Time, Container: ev.Container, Name: ev.Kind, Fields: fields}.String()
}
