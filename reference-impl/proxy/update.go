package proxy

import (
	"crypto/tls"
	"fmt"
	"slices"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/delta/routemap"
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
	compiled routemap.Map[attachKey, any]
	// index holds, per HTTP(S) listener, the routes filed under each exact hostname (a route
	// once per time it names the hostname): what a group is made of when an update patches
	// the listener's tables (patchListener).
	index map[string]routemap.Map[string, []ir.RouteKey]
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

func hashAttach(k attachKey) uint64 {
	return routemap.String(k.route.Name) ^ routemap.String(k.route.Namespace)*31 ^ routemap.String(k.listener)*961
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
	src := &updateSource{prev: cur, ch: ch, next: &routes{table: next, index: map[string]routemap.Map[string, []ir.RouteKey]{},
		listeners: map[string]*listenerConfig{}, certs: map[string][]tls.Certificate{}}}
	src.carryOver()
	// HTTP listeners no route of the update touches keep their tables, those it touches only
	// in exact-hostname groups get them patched; neither needs its routes.
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
	src.next.compiled = src.compiled.View()
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
	// compiled is next's compiled forms being made: the previous ones without those of the
	// routes the update upserts or deletes, plus the new compiles.
	compiled *routemap.Edit[attachKey, any]
	// indexing holds the index of each listener compiled from its routes, as it is built.
	indexing map[string]*routemap.Edit[string, []ir.RouteKey]
	// dirty holds, per listener, the hostnames whose exact-hostname HTTP group the update
	// changes: those of the routes it upserts or deletes there, before and after.
	dirty map[string]map[string]bool
	// patch holds the listeners whose tables are the previous ones with some exact-hostname
	// groups made again (patchListener), without assembling or filing their other routes.
	patch map[string]bool
}

// entry is t's route k, which the update's Changes say t has.
func entry(t *delta.Table, k ir.RouteKey) *ir.RouteEntry {
	e, _ := t.Routes.Get(k)
	return e
}

// hostsOn is the hostnames an HTTP route is filed under on a listener with hostname lh.
func hostsOn(r *ir.HTTPRoute, lh string) []string {
	if len(r.Hostnames) > 0 {
		return r.Hostnames
	}
	return []string{lh}
}

// carryOver starts next's compiled forms from the previous ones, without those of the routes
// the update upserts or deletes (all of them for the full state), and works out dirty and
// patch.
func (u *updateSource) carryOver() {
	u.indexing = map[string]*routemap.Edit[string, []ir.RouteKey]{}
	if u.prev == nil || u.ch.Full {
		u.compiled = routemap.New[attachKey, any](hashAttach).Edit()
		return
	}
	u.compiled = u.prev.compiled.Edit()
	u.dirty = map[string]map[string]bool{}
	u.patch = map[string]bool{}
	// A listener is patched when it is an HTTP(S) listener of the previous tables, the head is
	// the same, and every route the update changes there is an HTTPRoute filed only under
	// exact hostnames, before and after; unpatchable lists the others.
	unpatchable := map[string]bool{}
	mark := func(e *ir.RouteEntry, head *ir.Head) {
		for _, a := range e.Attachments {
			u.compiled.Delete(attachKey{a.Listener, e.RouteKey})
			d := u.dirty[a.Listener]
			if d == nil {
				d = map[string]bool{}
				u.dirty[a.Listener] = d
			}
			if a.HTTP == nil {
				unpatchable[a.Listener] = true // gRPC tables are built whole
				continue
			}
			lh := ""
			for _, l := range head.Listeners {
				if l.Name == a.Listener {
					lh = l.Hostname
				}
			}
			for _, h := range hostsOn(a.HTTP, lh) {
				d[h] = true
				if !exactHost(h) {
					unpatchable[a.Listener] = true
				}
			}
		}
	}
	for k := range u.ch.Upserted {
		if e, ok := u.prev.table.Routes.Get(k); ok {
			mark(e, &u.prev.table.Head)
		}
		mark(entry(u.next.table, k), &u.next.table.Head)
	}
	for k := range u.ch.Deleted {
		mark(entry(u.prev.table, k), &u.prev.table.Head)
	}
	if u.ch.Head {
		return
	}
	for _, l := range u.next.table.Head.Listeners {
		_, had := u.prev.listeners[l.Name]
		_, indexed := u.prev.index[l.Name]
		if u.ch.Listeners[l.Name] && !unpatchable[l.Name] && had && indexed && (l.Protocol == ir.ProtocolHTTP || l.Protocol == ir.ProtocolHTTPS) {
			u.patch[l.Name] = true
		}
	}
}

// touched says whether a listener must be compiled: the update changed its routes or the
// head, or it is new, or it is not an HTTP(S) listener (their ports' stream and TCP tables are
// built from the listener's routes on every compile; they carry few).
func (u *updateSource) touched(l *ir.Listener) bool {
	if u.patch[l.Name] {
		return false
	}
	if u.ch.Head || u.ch.Listeners[l.Name] || u.prev == nil || (l.Protocol != ir.ProtocolHTTP && l.Protocol != ir.ProtocolHTTPS) {
		return true
	}
	_, ok := u.prev.listeners[l.Name]
	return !ok
}

func (u *updateSource) listener(li int) (*listenerConfig, error) {
	name := u.names[li]
	if u.patch[name] {
		return u.patchListener(li)
	}
	if u.touched(&u.next.table.Head.Listeners[li]) {
		return nil, nil
	}
	u.next.certs[name] = u.prev.certs[name]
	if idx, ok := u.prev.index[name]; ok {
		u.next.index[name] = idx
	}
	return u.prev.listeners[name], nil
}

// patchListener makes the tables of a listener in patch: the previous ones, with the
// exact-hostname groups the update changed made again from the index, whose entries for the
// changed routes it updates first. Its cost follows the routes changed and the size of their
// groups, not the listener's routes.
func (u *updateSource) patchListener(li int) (*listenerConfig, error) {
	l := &u.next.table.Head.Listeners[li]
	prev := u.prev.listeners[l.Name]
	idx := u.prev.index[l.Name].Edit()
	file := func(e *ir.RouteEntry, add bool) {
		for _, a := range e.Attachments {
			if a.Listener != l.Name {
				continue
			}
			for _, h := range hostsOn(a.HTTP, l.Hostname) {
				ks, _ := idx.Get(h)
				if add {
					idx.Set(h, append(slices.Clip(ks), e.RouteKey))
				} else if i := slices.Index(ks, e.RouteKey); i >= 0 {
					idx.Set(h, slices.Delete(slices.Clone(ks), i, i+1))
				}
			}
		}
	}
	for k := range u.ch.Upserted {
		if e, ok := u.prev.table.Routes.Get(k); ok {
			file(e, false)
		}
	}
	for k := range u.ch.Deleted {
		file(entry(u.prev.table, k), false)
	}
	for k := range u.ch.Upserted {
		file(entry(u.next.table, k), true)
	}
	ht := &hostTable[*httpEntry]{exact: prev.http.exact, wild: prev.http.wild, any: prev.http.any}
	for h := range u.dirty[l.Name] {
		ks, _ := idx.Get(h)
		if len(ks) == 0 {
			idx.Delete(h)
		}
		var es []*httpEntry
		for _, k := range ks {
			cr, err := u.httpOn(l.Name, k)
			if err != nil {
				return nil, err
			}
			es = append(es, cr.entries...)
		}
		sortStable(es, httpLess)
		ht.setExact(h, es)
	}
	ht.building = nil
	u.next.certs[l.Name] = u.prev.certs[l.Name]
	u.next.index[l.Name] = idx.View()
	return &listenerConfig{name: prev.name, hostname: prev.hostname, http: ht, grpc: prev.grpc, hasGRPC: prev.hasGRPC, certs: prev.certs}, nil
}

// httpOn returns the compiled form of HTTPRoute k on listener ln: the one carried over, or a
// new compile of next's.
func (u *updateSource) httpOn(ln string, k ir.RouteKey) (*compiledHTTPRoute, error) {
	ak := attachKey{ln, k}
	if c, ok := u.compiled.Get(ak); ok {
		if cr, ok := c.(*compiledHTTPRoute); ok {
			return cr, nil
		}
	}
	for _, a := range entry(u.next.table, k).Attachments {
		if a.Listener == ln {
			return u.compileHTTP(ak, a.HTTP)
		}
	}
	return nil, fmt.Errorf("route %s has no attachment to listener %q", k, ln)
}

func (u *updateSource) compileHTTP(k attachKey, r *ir.HTTPRoute) (*compiledHTTPRoute, error) {
	cr, err := compileHTTPRoute(r)
	if err != nil {
		return nil, err
	}
	cr.info.occurrence = k.route.Name
	u.compiled.Set(k, cr)
	return cr, nil
}

// httpGroups returns, for a listener the update touched but whose head is unchanged, its
// previous exact-hostname groups and the hostnames among them the update changed.
func (u *updateSource) httpGroups(li int) (routemap.Map[string, []*httpEntry], map[string]bool, bool) {
	name := u.names[li]
	if u.prev == nil || u.ch.Head {
		return routemap.Map[string, []*httpEntry]{}, nil, false
	}
	lc, ok := u.prev.listeners[name]
	if !ok {
		return routemap.Map[string, []*httpEntry]{}, nil, false
	}
	return lc.http.exact, u.dirty[name], true
}

func (u *updateSource) built(li int, lc *listenerConfig) {
	name := u.names[li]
	u.next.listeners[name] = lc
	if _, ok := u.next.index[name]; ok {
		return // carried over or patched
	}
	if e := u.indexing[name]; e != nil {
		u.next.index[name] = e.View()
	} else if l := &u.next.table.Head.Listeners[li]; l.Protocol == ir.ProtocolHTTP || l.Protocol == ir.ProtocolHTTPS {
		u.next.index[name] = routemap.New[string, []ir.RouteKey](routemap.String)
	}
}

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

// http also files the route in the index of its listener, which is being compiled whole.
func (u *updateSource) http(li, j int, r *ir.HTTPRoute) (*compiledHTTPRoute, error) {
	name := u.names[li]
	k := attachKey{name, u.keys[li].HTTP[j]}
	idx := u.indexing[name]
	if idx == nil {
		idx = routemap.New[string, []ir.RouteKey](routemap.String).Edit()
		u.indexing[name] = idx
	}
	for _, h := range hostsOn(r, u.next.table.Head.Listeners[li].Hostname) {
		if exactHost(h) {
			ks, _ := idx.Get(h) // made by this edit: appended to in place
			idx.Set(h, append(ks, k.route))
		}
	}
	if c, ok := u.compiled.Get(k); ok {
		if cr, ok := c.(*compiledHTTPRoute); ok {
			return cr, nil
		}
	}
	return u.compileHTTP(k, r)
}

func (u *updateSource) grpc(li, j int, r *ir.GRPCRoute) (*compiledGRPCRoute, error) {
	k := attachKey{u.names[li], u.keys[li].GRPC[j]}
	if c, ok := u.compiled.Get(k); ok {
		if cr, ok := c.(*compiledGRPCRoute); ok {
			return cr, nil
		}
	}
	cr, err := compileGRPCRoute(r)
	if err != nil {
		return nil, err
	}
	cr.info.occurrence = k.route.Name
	u.compiled.Set(k, cr)
	return cr, nil
}
