package proxy

import (
	"net"
	"sort"
	"strings"
)

// hostTable groups entries by the hostname they were attached with and yields the groups that
// match a request host, most specific first: the exact hostname, then wildcards from the
// longest suffix to the shortest, then entries that match any host. That is the order the
// Gateway API gives listeners and routes ("characters in a matching non-wildcard hostname",
// then "characters in a matching hostname").
type hostTable[E any] struct {
	exact map[string][]E
	wild  []wildGroup[E] // sorted by len(suffix) descending
	any   []E
	// multi lists the exact hostnames with more than one entry, the only exact groups sort
	// has to sort (most hostnames have one route); only used while the table is built.
	multi []string
}

type wildGroup[E any] struct {
	suffix  string // ".example.com" for "*.example.com"
	entries []E
}

// newHostTable returns an empty table; hint is how many exact hostnames to make room for.
func newHostTable[E any](hint int) *hostTable[E] {
	return &hostTable[E]{exact: make(map[string][]E, hint)}
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
		old := t.exact[h]
		if len(old) < 2 && len(old)+len(es) >= 2 {
			t.multi = append(t.multi, h)
		}
		t.exact[h] = append(old, es...)
	}
}

// sort orders every group of t by less, stably; it ends building t.
func (t *hostTable[E]) sort(less func(a, b E) bool) {
	for _, h := range t.multi {
		sortStable(t.exact[h], less)
	}
	t.multi = nil
	for _, w := range t.wild {
		sortStable(w.entries, less)
	}
	sortStable(t.any, less)
}

// lookup calls fn with each group matching host, most specific first, until fn returns true.
func (t *hostTable[E]) lookup(host string, fn func([]E) bool) bool {
	if es, ok := t.exact[host]; ok && fn(es) {
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
