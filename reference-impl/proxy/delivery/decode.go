package delivery

import (
	"encoding/json"
	"fmt"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Decoding is the largest cost of applying a snapshot (about 7-12 ms for 1,000 HTTPRoutes, more
// than validating and compiling it), and consecutive snapshots differ in a route or two. So
// routes are first split off as raw JSON (splitRoutes, falling back to wireSnapshot), and only
// routes whose encoding was not in the previous snapshot are decoded; the others reuse the
// previous decoded value. The controller encodes deterministically (encoding/json, struct
// field order), so an unchanged route has identical bytes. BenchmarkDecode compares it with
// plain json.Unmarshal.

// wireSnapshot is ir.Snapshot with each listener's routes left encoded. The outer fields
// shadow the embedded ones of the same JSON name.
type wireSnapshot struct {
	ir.Snapshot
	Listeners []wireListener `json:"listeners"`
}

type wireListener struct {
	ir.Listener
	HTTPRoutes []json.RawMessage `json:"httpRoutes,omitempty"`
	GRPCRoutes []json.RawMessage `json:"grpcRoutes,omitempty"`
}

// routeCache maps a route's encoding to its decoded value, for the routes of the last
// snapshot decoded. Decoded values are shared with the applied snapshot, which appliers treat
// as read-only.
type routeCache struct {
	http map[string]cached[ir.HTTPRoute]
	grpc map[string]cached[ir.GRPCRoute]
}

// cached keeps the key string so the next map reuses it instead of copying the bytes again.
type cached[R any] struct {
	key   string
	route R
}

// decode decodes one snapshot line, reusing the decoded routes of the previous line.
func (c *routeCache) decode(line []byte) (*ir.Snapshot, error) {
	if skeleton, lists, ok := splitRoutes(line); ok {
		if s, err := c.decodeSplit(skeleton, lists); err == nil {
			return s, nil
		}
		// Fall through: the general path reports the error in its usual words.
	}
	var w wireSnapshot
	if err := json.Unmarshal(line, &w); err != nil {
		return nil, err
	}
	http := make(map[string]cached[ir.HTTPRoute], len(c.http))
	grpc := make(map[string]cached[ir.GRPCRoute], len(c.grpc))
	s := w.Snapshot
	s.Listeners = make([]ir.Listener, len(w.Listeners))
	for i, wl := range w.Listeners {
		l := wl.Listener
		var err error
		if l.HTTPRoutes, err = decodeRoutes(wl.HTTPRoutes, c.http, http); err != nil {
			return nil, fmt.Errorf("listeners[%d] %q httpRoutes%w", i, l.Name, err)
		}
		if l.GRPCRoutes, err = decodeRoutes(wl.GRPCRoutes, c.grpc, grpc); err != nil {
			return nil, fmt.Errorf("listeners[%d] %q grpcRoutes%w", i, l.Name, err)
		}
		s.Listeners[i] = l
	}
	c.http, c.grpc = http, grpc
	return &s, nil
}

func decodeRoutes[R any](raw []json.RawMessage, prev, next map[string]cached[R]) ([]R, error) {
	if raw == nil {
		return nil, nil
	}
	out := make([]R, len(raw))
	for i, b := range raw {
		e, ok := prev[string(b)]
		if !ok {
			e.key = string(b)
			if err := json.Unmarshal(b, &e.route); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		out[i] = e.route
		next[e.key] = e
	}
	return out, nil
}

// decodeSplit decodes the skeleton of splitRoutes and fills in the routes it took out.
func (c *routeCache) decodeSplit(skeleton []byte, lists []routeList) (*ir.Snapshot, error) {
	var s ir.Snapshot
	if err := json.Unmarshal(skeleton, &s); err != nil {
		return nil, err
	}
	http := make(map[string]cached[ir.HTTPRoute], len(c.http))
	grpc := make(map[string]cached[ir.GRPCRoute], len(c.grpc))
	for _, l := range lists {
		if l.listener < 0 || l.listener >= len(s.Listeners) {
			return nil, fmt.Errorf("routes of listener %d, but the snapshot has %d listeners", l.listener, len(s.Listeners))
		}
		if len(l.elems) == 0 {
			continue // the skeleton kept the empty array
		}
		ls := &s.Listeners[l.listener]
		var err error
		if l.grpc {
			ls.GRPCRoutes, err = decodeRoutes(l.elems, c.grpc, grpc)
		} else {
			ls.HTTPRoutes, err = decodeRoutes(l.elems, c.http, http)
		}
		if err != nil {
			return nil, err
		}
	}
	c.http, c.grpc = http, grpc
	return &s, nil
}
