package proxy

import (
	"crypto/tls"
	"fmt"
	"maps"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// routes is the configuration in force keyed by route (package delta), with what it was
// compiled to, so that an update validates and compiles only the routes it upserts and
// rebuilds only the listeners they touch. Everything here is replaced, never modified, by a
// successful update; a refused one leaves it as it was.
type routes struct {
	table *delta.Table
	// compiled holds each route's compiled form per listener (*compiledHTTPRoute or
	// *compiledGRPCRoute); a route's compiled form depends on it alone, and it changes only
	// by an upsert.
	compiled map[attachKey]any
	// listeners are the listeners' tables by name; certs their parsed certificates.
	listeners map[string]*listenerConfig
	certs     map[string][]tls.Certificate
}

// attachKey is a route on one listener: a route attached to two listeners may differ between
// them (its hostnames are intersected with each listener's).
type attachKey struct {
	listener string
	route    ir.RouteKey
}

// parallelValidation is how many upserted routes make validating beside building the tables
// worth a goroutine (the full state on connect, or an endpoint change shared by many routes).
const parallelValidation = 64

// prepare validates and compiles the configuration an update makes of cur (nil before the
// first update). It returns the new state and its tables; cur is not modified.
func prepare(cur *routes, u *ir.Update) (*routes, *compiled, error) {
	var table *delta.Table
	if cur != nil {
		table = cur.table
	}
	next, ch, err := delta.Apply(table, u)
	if err != nil {
		return nil, nil, err
	}
	src := &updateSource{prev: cur, ch: ch, next: &routes{table: next, listeners: map[string]*listenerConfig{}, certs: map[string][]tls.Certificate{}}}
	src.carryOver()
	// HTTP listeners no route of the update touches keep their tables, and need no routes.
	s, keys := delta.SnapshotKeys(next, src.touched)
	src.keys = keys
	src.names = make([]string, len(s.Listeners))
	for i, l := range s.Listeners {
		src.names[i] = l.Name
	}
	changed := delta.Changed(next, ch)
	var c *compiled
	var verr error
	if len(ch.Upserted) >= parallelValidation {
		valid := make(chan error, 1)
		go func() { valid <- changed.Validate() }()
		c, err = safeBuild(s, src)
		verr = <-valid
	} else if verr = changed.Validate(); verr == nil {
		c, err = safeBuild(s, src)
	}
	if verr != nil {
		return nil, nil, fmt.Errorf("update %s version %d: %w", u.Gateway, u.Version, verr)
	}
	if err != nil {
		return nil, nil, err
	}
	return src.next, c, nil
}

// updateSource is the routeSource of one update: the previous compile's work for what the
// update left alone, fresh compiles for the rest (recorded in next).
type updateSource struct {
	prev  *routes
	ch    delta.Changes
	next  *routes
	names []string
	keys  []delta.Keys
	// dirty holds, per listener, the hostnames whose exact-hostname HTTP group the update
	// changes: those of the routes it upserts or deletes there, before and after.
	dirty map[string]map[string]bool
}

// carryOver starts next's compiled forms from the previous ones, without those of the routes
// the update upserts or deletes (all of them for the full state), and works out dirty.
func (u *updateSource) carryOver() {
	if u.prev == nil || u.ch.Full {
		u.next.compiled = map[attachKey]any{}
		return
	}
	u.next.compiled = maps.Clone(u.prev.compiled)
	u.dirty = map[string]map[string]bool{}
	mark := func(e *ir.RouteEntry, head *ir.Head) {
		for _, a := range e.Attachments {
			delete(u.next.compiled, attachKey{a.Listener, e.RouteKey})
			d := u.dirty[a.Listener]
			if d == nil {
				d = map[string]bool{}
				u.dirty[a.Listener] = d
			}
			var hosts []string
			switch {
			case a.HTTP != nil:
				hosts = a.HTTP.Hostnames
			case a.GRPC != nil:
				continue // gRPC tables are built whole
			default:
				continue
			}
			if len(hosts) == 0 {
				for _, l := range head.Listeners {
					if l.Name == a.Listener {
						hosts = []string{l.Hostname}
					}
				}
			}
			for _, h := range hosts {
				d[h] = true
			}
		}
	}
	for k := range u.ch.Upserted {
		if e, ok := u.prev.table.Routes[k]; ok {
			mark(e, &u.prev.table.Head)
		}
		mark(u.next.table.Routes[k], &u.next.table.Head)
	}
	for k := range u.ch.Deleted {
		mark(u.prev.table.Routes[k], &u.prev.table.Head)
	}
}

// touched says whether a listener must be compiled: the update changed its routes or the
// head, or it is new, or it is not an HTTP(S) listener (their ports' stream and TCP tables are
// built from the listener's routes on every compile; they carry few).
func (u *updateSource) touched(l *ir.Listener) bool {
	if u.ch.Head || u.ch.Listeners[l.Name] || u.prev == nil || (l.Protocol != ir.ProtocolHTTP && l.Protocol != ir.ProtocolHTTPS) {
		return true
	}
	_, ok := u.prev.listeners[l.Name]
	return !ok
}

func (u *updateSource) listener(li int) *listenerConfig {
	name := u.names[li]
	if u.touched(&u.next.table.Head.Listeners[li]) {
		return nil
	}
	u.next.certs[name] = u.prev.certs[name]
	return u.prev.listeners[name]
}

// httpGroups returns, for a listener the update touched but whose head is unchanged, its
// previous exact-hostname groups and the hostnames among them the update changed.
func (u *updateSource) httpGroups(li int) (map[string][]*httpEntry, map[string]bool) {
	name := u.names[li]
	if u.prev == nil || u.ch.Head {
		return nil, nil
	}
	lc, ok := u.prev.listeners[name]
	if !ok {
		return nil, nil
	}
	return lc.http.exact, u.dirty[name]
}

func (u *updateSource) built(li int, lc *listenerConfig) { u.next.listeners[u.names[li]] = lc }

func (u *updateSource) certs(li int, l *ir.Listener) ([]tls.Certificate, error) {
	name := u.names[li]
	if cs, ok := u.prev.certsOf(name); ok && !u.ch.Head {
		u.next.certs[name] = cs
		return cs, nil
	}
	cs, err := compileCerts(l.TLS)
	u.next.certs[name] = cs
	return cs, err
}

func (r *routes) certsOf(name string) ([]tls.Certificate, bool) {
	if r == nil {
		return nil, false
	}
	cs, ok := r.certs[name]
	return cs, ok
}

// reuse returns the compiled form carried over for a route the update did not upsert.
func (u *updateSource) reuse(k attachKey) (any, bool) {
	c, ok := u.next.compiled[k]
	return c, ok
}

func (u *updateSource) http(li, j int, r *ir.HTTPRoute) (*compiledHTTPRoute, error) {
	k := attachKey{u.names[li], u.keys[li].HTTP[j]}
	if c, ok := u.reuse(k); ok {
		if cr, ok := c.(*compiledHTTPRoute); ok {
			return cr, nil
		}
	}
	cr, err := compileHTTPRoute(r)
	if err != nil {
		return nil, err
	}
	cr.info.occurrence = k.route.Name
	u.next.compiled[k] = cr
	return cr, nil
}

func (u *updateSource) grpc(li, j int, r *ir.GRPCRoute) (*compiledGRPCRoute, error) {
	k := attachKey{u.names[li], u.keys[li].GRPC[j]}
	if c, ok := u.reuse(k); ok {
		if cr, ok := c.(*compiledGRPCRoute); ok {
			return cr, nil
		}
	}
	cr, err := compileGRPCRoute(r)
	if err != nil {
		return nil, err
	}
	cr.info.occurrence = k.route.Name
	u.next.compiled[k] = cr
	return cr, nil
}
