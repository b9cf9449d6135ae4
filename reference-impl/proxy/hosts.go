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
}

type wildGroup[E any] struct {
	suffix  string // ".example.com" for "*.example.com"
	entries []E
}

func newHostTable[E any]() *hostTable[E] { return &hostTable[E]{exact: map[string][]E{}} }

// add files e under hostname h ("" matches any host).
func (t *hostTable[E]) add(h string, e E) {
	switch {
	case h == "":
		t.any = append(t.any, e)
	case strings.HasPrefix(h, "*."):
		suffix := h[1:]
		for i := range t.wild {
			if t.wild[i].suffix == suffix {
				t.wild[i].entries = append(t.wild[i].entries, e)
				return
			}
		}
		t.wild = append(t.wild, wildGroup[E]{suffix: suffix, entries: []E{e}})
		sort.SliceStable(t.wild, func(i, j int) bool { return len(t.wild[i].suffix) > len(t.wild[j].suffix) })
	default:
		t.exact[h] = append(t.exact[h], e)
	}
}

// each calls fn on every group of entries of t, so they can be sorted in place.
func (t *hostTable[E]) each(fn func([]E)) {
	for _, es := range t.exact {
		fn(es)
	}
	for _, w := range t.wild {
		fn(w.entries)
	}
	fn(t.any)
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
