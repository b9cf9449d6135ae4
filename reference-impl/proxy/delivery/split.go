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
	// open and close are the offsets of the array's brackets.
	open, close int
}

// splitRoutes finds every listener's httpRoutes and grpcRoutes array in one pass over a
// snapshot line and returns the line with those arrays emptied (the skeleton). It is cheaper
// than encoding/json's scanning (which validates, then scans again to skip each route) because
// it only tracks strings and nesting; the skeleton and every route not seen before are still
// decoded by encoding/json, which rejects malformed input. ok is false when the line does not
// have the expected shape; the caller then decodes it the general way.
func splitRoutes(line []byte) (skeleton []byte, lists []routeList, ok bool) {
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
					l, ok := splitArray(line, v)
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
	prev := 0
	for _, l := range lists {
		skeleton = append(skeleton, line[prev:l.open+1]...)
		prev = l.close
	}
	return append(skeleton, line[prev:]...), lists, true
}

// splitArray splits the array whose '[' is at open into its elements.
func splitArray(line []byte, open int) (routeList, bool) {
	l := routeList{open: open}
	i := skipSpace(line, open+1)
	if i < len(line) && line[i] == ']' {
		l.close = i
		return l, true
	}
	for i < len(line) {
		end, ok := valueEnd(line, i)
		if !ok {
			return l, false
		}
		l.elems = append(l.elems, json.RawMessage(line[i:end]))
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

// stringEnd returns the offset just past the string whose opening quote is at i.
func stringEnd(line []byte, i int) (int, bool) {
	for j := i + 1; j < len(line); {
		k := bytes.IndexAny(line[j:], `"\`)
		if k < 0 {
			return 0, false
		}
		j += k
		if line[j] == '"' {
			return j + 1, true
		}
		j += 2 // a backslash escapes the next byte
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
