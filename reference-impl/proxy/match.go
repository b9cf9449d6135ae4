package proxy

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// pathKind orders path matches. The spec ranks Exact above PathPrefix (longest first) and
// leaves RegularExpression to the implementation; like Envoy Gateway we put it between the
// two (longer patterns first), so a regex is not shadowed by the default "/" prefix.
type pathKind int

const (
	pathExact pathKind = iota
	pathRegex
	pathPrefix
)

type valueMatch struct {
	name  string // canonical header name or exact query parameter name
	value string
	re    *regexp.Regexp // set for RegularExpression
}

func (m valueMatch) ok(v string, present bool) bool {
	if !present {
		return false
	}
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.value
}

// httpEntry is one HTTPRouteMatch of one rule, the unit the spec orders.
type httpEntry struct {
	route    *routeInfo
	rule     *httpRule
	matchIdx int

	kind   pathKind
	path   string // Exact value, or PathPrefix value without its trailing slash ("" for "/")
	plen   int    // characters in the path value as written, for precedence
	re     *regexp.Regexp
	method string
	header []valueMatch
	query  []valueMatch
}

// routeInfo is what precedence ties and metrics need from a route.
type routeInfo struct {
	meta ir.RouteMeta
	key  string // "namespace/name"
	// occurrence tells apart the copies of a route a snapshot holds more than once on a
	// listener (delta keys "name", "name#2"...), in snapshot order; "" when compiled from a
	// whole snapshot, whose order the tables keep.
	occurrence string
}

func compileHTTPMatch(m ir.HTTPMatch) (httpEntry, error) {
	e := httpEntry{kind: pathPrefix, plen: 1, method: m.Method}
	if m.Path != nil {
		switch m.Path.Type {
		case ir.MatchExact:
			e.kind, e.path, e.plen = pathExact, m.Path.Value, len(m.Path.Value)
		case ir.MatchRegularExpression:
			re, err := regexp.Compile("^(?:" + m.Path.Value + ")$")
			if err != nil {
				return e, err
			}
			e.kind, e.re, e.plen = pathRegex, re, len(m.Path.Value)
		default: // PathPrefix
			e.path, e.plen = strings.TrimSuffix(m.Path.Value, "/"), len(m.Path.Value)
		}
	}
	var err error
	if e.header, err = compileValueMatches(m.Headers, true); err != nil {
		return e, err
	}
	if e.query, err = compileValueMatches(m.QueryParams, false); err != nil {
		return e, err
	}
	return e, nil
}

func compileValueMatches(ms []ir.HeaderMatch, header bool) ([]valueMatch, error) {
	var out []valueMatch
	seen := map[string]bool{}
	for _, m := range ms {
		v := valueMatch{name: m.Name, value: m.Value}
		if header {
			v.name = http.CanonicalHeaderKey(m.Name)
		}
		// The spec: only the first entry with an equivalent name is considered.
		if seen[v.name] {
			continue
		}
		seen[v.name] = true
		if m.Type == ir.MatchRegularExpression {
			re, err := regexp.Compile(m.Value)
			if err != nil {
				return nil, err
			}
			v.re = re
		}
		out = append(out, v)
	}
	return out, nil
}

// pathMatches reports whether path p matches prefix (given without trailing slash) element by
// element: "/abc" matches "/abc", "/abc/" and "/abc/def" but not "/abcd".
func prefixMatches(prefix, p string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

func (e *httpEntry) matches(r *http.Request, query url.Values) bool {
	p := r.URL.Path
	if p == "" {
		p = "/"
	}
	switch e.kind {
	case pathExact:
		if p != e.path {
			return false
		}
	case pathRegex:
		if !e.re.MatchString(p) {
			return false
		}
	default:
		if !prefixMatches(e.path, p) {
			return false
		}
	}
	if e.method != "" && r.Method != e.method {
		return false
	}
	for _, h := range e.header {
		vs, ok := r.Header[h.name]
		v := ""
		if ok && len(vs) > 0 {
			// Several values of one header are compared as the comma-joined list.
			v = strings.Join(vs, ",")
		}
		if !h.ok(v, ok) {
			return false
		}
	}
	for _, q := range e.query {
		// The spec says: with several values for one name, the first one counts.
		vs, ok := query[q.name]
		v := ""
		if ok && len(vs) > 0 {
			v = vs[0]
		}
		if !q.ok(v, ok) {
			return false
		}
	}
	return true
}

// httpLess orders entries by the spec's precedence.
func httpLess(a, b *httpEntry) bool {
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.plen != b.plen && a.kind != pathExact {
		return a.plen > b.plen
	}
	if (a.method != "") != (b.method != "") {
		return a.method != ""
	}
	if len(a.header) != len(b.header) {
		return len(a.header) > len(b.header)
	}
	if len(a.query) != len(b.query) {
		return len(a.query) > len(b.query)
	}
	return routeTieLess(a.route, b.route, a.rule.index, b.rule.index, a.matchIdx, b.matchIdx)
}

// routeTieLess breaks ties as the spec orders them: oldest route, then "namespace/name"
// alphabetically, then rule order, then match order within the rule.
func routeTieLess(a, b *routeInfo, ruleA, ruleB, matchA, matchB int) bool {
	if a != b {
		ta, tb := a.meta.CreationTimestamp, b.meta.CreationTimestamp
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
		if a.key != b.key {
			return a.key < b.key
		}
	}
	if ruleA != ruleB {
		return ruleA < ruleB
	}
	if matchA != matchB {
		return matchA < matchB
	}
	// Last, the copies of one route a snapshot repeats, in snapshot order.
	return len(a.occurrence) < len(b.occurrence) || len(a.occurrence) == len(b.occurrence) && a.occurrence < b.occurrence
}

// sortStable sorts es by less, keeping the order of equal entries. A table has a group per
// hostname, mostly of one or two entries, so it avoids sort.SliceStable's per-call reflection
// (a fifth of compiling a 1,000-route snapshot's tables).
func sortStable[E any](es []E, less func(a, b E) bool) {
	if len(es) < 2 {
		return
	}
	slices.SortStableFunc(es, func(a, b E) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
}

// matchHTTP returns the entry selecting r, or nil.
func matchHTTP(t *hostTable[*httpEntry], host string, r *http.Request) *httpEntry {
	var query url.Values
	parsed := false
	var got *httpEntry
	t.lookup(host, func(es []*httpEntry) bool {
		for _, e := range es {
			if len(e.query) > 0 && !parsed {
				query, parsed = r.URL.Query(), true
			}
			if e.matches(r, query) {
				got = e
				return true
			}
		}
		return false
	})
	return got
}
