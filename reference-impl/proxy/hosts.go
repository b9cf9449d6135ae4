package proxy

import (
	"net"
	"sort"
	"strings"

	"github.com/gatecheck/gatecheck/reference-impl/delta/routemap"
)

// hostTable groups entries by the hostname they were attached with and yields the groups that
// match a request host, most specific first: the exact hostname, then wildcards from the
// longest suffix to the shortest, then entries that match any host. That is the order the
// Gateway API gives listeners and routes ("characters in a matching non-wildcard hostname",
// then "characters in a matching hostname").
type hostTable[E any] struct {
	// exact is never modified once the table is published; a table built from an earlier one
	// (an update, update.go) shares the groups and the map shards it does not change.
	exact routemap.Map[string, []E]
	wild  []wildGroup[E] // sorted by len(suffix) descending
	any   []E
	// building is exact's edit while the table is built (nil before the first exact group).
	building *routemap.Edit[string, []E]
	// multi lists the exact hostnames with more than one entry, the only exact groups sort
	// has to sort (most hostnames have one route); only used while the table is built.
	multi []string
}

type wildGroup[E any] struct {
	suffix  string // ".example.com" for "*.example.com"
	entries []E
}

// newHostTable returns an empty table.
func newHostTable[E any]() *hostTable[E] {
	return &hostTable[E]{exact: routemap.New[string, []E](routemap.String)}
}

// setExact makes es the group of exact hostname h; an empty es removes the group.
func (t *hostTable[E]) setExact(h string, es []E) {
	if t.building == nil {
		t.building = t.exact.Edit()
	}
	if len(es) == 0 {
		t.building.Delete(h)
	} else {
		t.building.Set(h, es)
	}
	t.exact = t.building.View()
}

// exactHost reports whether hostname h is filed in a table's exact map.
func exactHost(h string) bool { return h != "" && !strings.HasPrefix(h, "*.") }

// add files e under hostname h ("" matches any host).
func (t *hostTable[E]) add(h string, e E) { t.addAll(h, []E{e}) }

// addAll files es under hostname h. The group gets its own copy: es may be shared with other
// tables, and groups are sorted in place.
func (t *hostTable[E]) addAll(h string, es []E) {
	switch {
	case h == "":
		t.any = append(t.any, es...)
	case strings.HasPrefix(h, "*."):
		suffix := h[1:]
		for i := range t.wild {
			if t.wild[i].suffix == suffix {
				t.wild[i].entries = append(t.wild[i].entries, es...)
				return
			}
		}
		t.wild = append(t.wild, wildGroup[E]{suffix: suffix, entries: append([]E(nil), es...)})
		sort.SliceStable(t.wild, func(i, j int) bool { return len(t.wild[i].suffix) > len(t.wild[j].suffix) })
	default:
		old, _ := t.exact.Get(h)
		if len(old) < 2 && len(old)+len(es) >= 2 {
			t.multi = append(t.multi, h)
		}
		t.setExact(h, append(old, es...))
	}
}

// sort orders every group of t by less, stably; it ends building t.
func (t *hostTable[E]) sort(less func(a, b E) bool) {
	for _, h := range t.multi {
		es, _ := t.exact.Get(h)
		sortStable(es, less)
	}
	t.multi, t.building = nil, nil
	for _, w := range t.wild {
		sortStable(w.entries, less)
	}
	sortStable(t.any, less)
}

// lookup calls fn with each group matching host, most specific first, until fn returns true.
func (t *hostTable[E]) lookup(host string, fn func([]E) bool) bool {
	if es, ok := t.exact.Get(host); ok && fn(es) {
		return true
	}
	for _, w := range t.wild {
		// A wildcard matches one or more labels: "*.example.com" matches "a.b.example.com"
		// but not "example.com".
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) && fn(w.entries) {
			return true
		}
	}
	return len(t.any) > 0 && fn(t.any)
}

// first returns the first entry of the most specific group matching host.
func (t *hostTable[E]) first(host string) (E, bool) {
	var got E
	ok := t.lookup(host, func(es []E) bool {
		if len(es) == 0 {
			return false
		}
		got = es[0]
		return true
	})
	return got, ok
}

// normalizeHost lower-cases a Host header or SNI value and strips its port and trailing dot.
func normalizeHost(h string) string {
	if h == "" {
		return ""
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
