package delivery

import (
	"bytes"
	"encoding/json"
)

// routeList is one listener's httpRoutes or grpcRoutes array found in a snapshot line.
type routeList struct {
	listener int  // index in the listeners array
	grpc     bool // grpcRoutes, else httpRoutes
	elems    []json.RawMessage
	// match[i] is the index of elems[i] in the previous line's list, or -1.
	match []int
	// open and close are the offsets of the array's brackets.
	open, close int
}

// splitRoutes finds every listener's httpRoutes and grpcRoutes array in one pass over a
// snapshot line and returns the line with those arrays emptied (the skeleton). It is cheaper
// than encoding/json's scanning (which validates, then scans again to skip each route) because
// it only tracks strings and nesting; the skeleton and every route not seen before are still
// decoded by encoding/json, which rejects malformed input. ok is false when the line does not
// have the expected shape; the caller then decodes it the general way.
//
// prev, if not nil, returns the encodings of a listener's routes in the previous line: a
// route found again there (see find) is skipped with one comparison instead of scanned, the
// bulk of the work for a line that differs from the previous one in a route.
func splitRoutes(line []byte, prev func(listener int, grpc bool) []string) (skeleton []byte, lists []routeList, ok bool) {
	depth, listener := 0, -1
	inListeners := false
	for i := 0; i < len(line); {
		switch c := line[i]; c {
		case '"':
			end, ok := stringEnd(line, i)
			if !ok {
				return nil, nil, false
			}
			k := skipSpace(line, end)
			if k >= len(line) || line[k] != ':' {
				i = end
				continue
			}
			key := line[i+1 : end-1]
			if depth == 1 {
				inListeners = string(key) == "listeners"
			}
			v := skipSpace(line, k+1)
			if depth == 3 && inListeners && v < len(line) && line[v] == '[' {
				grpc := string(key) == "grpcRoutes"
				if grpc || string(key) == "httpRoutes" {
					var keys []string
					if prev != nil {
						keys = prev(listener, grpc)
					}
					l, ok := splitArray(line, v, keys)
					if !ok {
						return nil, nil, false
					}
					l.listener, l.grpc = listener, grpc
					lists = append(lists, l)
					i = l.close + 1
					continue
				}
			}
			i = k + 1
		case '{', '[':
			depth++
			if c == '{' && depth == 3 && inListeners {
				listener++
			}
			i++
		case '}', ']':
			depth--
			i++
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, nil, false
	}
	skeleton = make([]byte, 0, 256+len(line)/64)
	from := 0
	for _, l := range lists {
		skeleton = append(skeleton, line[from:l.open+1]...)
		from = l.close
	}
	return append(skeleton, line[from:]...), lists, true
}

// splitArray splits the array whose '[' is at open into its elements, looking for each
// among prev (the previous line's elements) first.
func splitArray(line []byte, open int, prev []string) (routeList, bool) {
	l := routeList{open: open}
	i := skipSpace(line, open+1)
	if i < len(line) && line[i] == ']' {
		l.close = i
		return l, true
	}
	if len(prev) > 0 {
		l.elems = make([]json.RawMessage, 0, len(prev)+1)
		l.match = make([]int, 0, len(prev)+1)
	}
	next := 0
	for i < len(line) {
		var end int
		j := find(prev, next, line, i)
		if j >= 0 {
			end, next = i+len(prev[j]), j+1
		} else {
			var ok bool
			if end, ok = valueEnd(line, i); !ok {
				return l, false
			}
		}
		l.elems = append(l.elems, json.RawMessage(line[i:end]))
		l.match = append(l.match, j)
		i = skipSpace(line, end)
		if i >= len(line) {
			return l, false
		}
		switch line[i] {
		case ',':
			i = skipSpace(line, i+1)
		case ']':
			l.close = i
			return l, true
		default:
			return l, false
		}
	}
	return l, false
}

// valueEnd returns the offset just past the JSON value starting at i (objects, arrays and
// strings are followed exactly; anything else runs to the next delimiter).
func valueEnd(line []byte, i int) (int, bool) {
	switch line[i] {
	case '"':
		return stringEnd(line, i)
	case '{', '[':
		depth := 0
		for i < len(line) {
			switch line[i] {
			case '"':
				end, ok := stringEnd(line, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	for j := i; j < len(line); j++ {
		switch line[j] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return j, j > i
		}
	}
	return 0, false
}

// stringEnd returns the offset just past the string whose opening quote is at i. A quote
// ends the string unless an odd run of backslashes precedes it. It finds quotes with
// bytes.IndexByte: most of a snapshot line is strings, and bytes.IndexAny, which builds its
// byte set on every call, was 40% of decoding a line when every route was scanned.
func stringEnd(line []byte, i int) (int, bool) {
	for j := i + 1; j < len(line); {
		k := bytes.IndexByte(line[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		b := q
		for b > i+1 && line[b-1] == '\\' {
			b--
		}
		if (q-b)%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
	return 0, false
}

func skipSpace(line []byte, i int) int {
	for i < len(line) {
		switch line[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
