package delta

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/reference-impl/delta/routemap"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// ErrWrongBase is returned by Apply for a delta whose BaseVersion is not the table's version:
// the proxy missed or refused an update, and must ask for the full state (reconnect).
var ErrWrongBase = errors.New("delta on the wrong base version")

// Table is a Gateway's configuration keyed by route. A Table is never modified once built:
// Apply returns a new one, sharing the unchanged entries (and most of the map holding them:
// applying a delta costs what it changes, not what the table holds).
type Table struct {
	Gateway ir.NamespacedName
	Version int64
	Head    ir.Head
	Routes  routemap.Map[ir.RouteKey, *ir.RouteEntry]
	// attachments counts the attachments of all routes (Next checks a snapshot against it).
	attachments int
}

// hashKey spreads route keys over a routemap.Map's shards.
func hashKey(k ir.RouteKey) uint64 {
	return routemap.String(k.Name) ^ routemap.String(k.Namespace)*31 ^ routemap.String(string(k.Kind))*961
}

// newRoutes starts an empty route map.
func newRoutes() *routemap.Edit[ir.RouteKey, *ir.RouteEntry] {
	return routemap.New[ir.RouteKey, *ir.RouteEntry](hashKey).Edit()
}

// FromSnapshot splits a snapshot into its head and its routes. The table shares the routes'
// memory with s (snapshots are immutable).
func FromSnapshot(s *ir.Snapshot) *Table {
	t := &Table{Gateway: s.Gateway, Version: s.Version}
	routes := newRoutes()
	t.Head.BackendClientCertificate = s.BackendClientCertificate
	t.Head.Listeners = make([]ir.Listener, len(s.Listeners))
	for i := range s.Listeners {
		l := &s.Listeners[i]
		t.Head.Listeners[i] = headOf(l)
		for j := range l.HTTPRoutes {
			add(routes, ir.KindHTTPRoute, &l.HTTPRoutes[j].RouteMeta, ir.Attachment{Listener: l.Name, HTTP: &l.HTTPRoutes[j]})
		}
		for j := range l.GRPCRoutes {
			add(routes, ir.KindGRPCRoute, &l.GRPCRoutes[j].RouteMeta, ir.Attachment{Listener: l.Name, GRPC: &l.GRPCRoutes[j]})
		}
		for j := range l.TCPRoutes {
			add(routes, ir.KindTCPRoute, &l.TCPRoutes[j].RouteMeta, ir.Attachment{Listener: l.Name, TCP: &l.TCPRoutes[j]})
		}
		for j := range l.UDPRoutes {
			add(routes, ir.KindUDPRoute, &l.UDPRoutes[j].RouteMeta, ir.Attachment{Listener: l.Name, UDP: &l.UDPRoutes[j]})
		}
		for j := range l.TLSRoutes {
			add(routes, ir.KindTLSRoute, &l.TLSRoutes[j].RouteMeta, ir.Attachment{Listener: l.Name, TLS: &l.TLSRoutes[j]})
		}
	}
	t.Routes = routes.View()
	for _, e := range t.Routes.All() {
		t.attachments += len(e.Attachments)
	}
	return t
}

// headOf is a listener without its routes.
func headOf(l *ir.Listener) ir.Listener {
	h := *l
	h.HTTPRoutes, h.GRPCRoutes, h.TCPRoutes, h.UDPRoutes, h.TLSRoutes = nil, nil, nil, nil, nil
	return h
}

// add files a route's attachment to one listener under its key; a route found again on the
// same listener (a snapshot may repeat one) gets the next free "#n" key.
func add(routes *routemap.Edit[ir.RouteKey, *ir.RouteEntry], kind ir.RouteKind, m *ir.RouteMeta, a ir.Attachment) {
	k := ir.RouteKey{Kind: kind, Namespace: m.Namespace, Name: m.Name}
	for n := 2; ; n++ {
		e, ok := routes.Get(k)
		if !ok {
			routes.Set(k, &ir.RouteEntry{RouteKey: k, Attachments: []ir.Attachment{a}})
			return
		}
		if e.Attachments[len(e.Attachments)-1].Listener != a.Listener {
			e.Attachments = append(e.Attachments, a)
			return
		}
		k.Name = m.Name + "#" + strconv.Itoa(n)
	}
}

// Full is the update that carries the whole table: the first line of every stream.
func Full(t *Table) *ir.Update {
	head := t.Head
	u := &ir.Update{Schema: ir.SchemaVersion, Gateway: t.Gateway, Version: t.Version, Head: &head, Upserts: make([]ir.RouteEntry, 0, t.Routes.Len())}
	for _, e := range t.Routes.All() {
		u.Upserts = append(u.Upserts, *e)
	}
	slices.SortFunc(u.Upserts, func(a, b ir.RouteEntry) int { return keyCmp(a.RouteKey, b.RouteKey) })
	return u
}

func keyCmp(a, b ir.RouteKey) int {
	return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// Diff is the delta from old to next (next's Version, old's as the base), or nil when they
// hold the same configuration. A route is upserted when any of its attachments differs
// (reflect.DeepEqual); a wrong "differs" would only resend a route.
func Diff(old, next *Table) *ir.Update { return DiffRoutes(old, next, nil) }

// DiffRoutes is Diff for a next that differs from old at most in its head and in the routes
// maybe says true for (the routes a reconcile translated again; with copies, "name#2" counts
// as "name"): only those are compared, the others are taken as equal when both tables have
// them. A nil maybe compares every route.
func DiffRoutes(old, next *Table, maybe func(ir.RouteKey) bool) *ir.Update {
	u := &ir.Update{Schema: ir.SchemaVersion, Gateway: next.Gateway, Version: next.Version, BaseVersion: old.Version}
	if !reflect.DeepEqual(old.Head, next.Head) {
		head := next.Head
		u.Head = &head
	}
	for k, e := range next.Routes.All() {
		o, ok := old.Routes.Get(k)
		if ok && maybe != nil {
			base := k
			if i := strings.IndexByte(base.Name, '#'); i >= 0 {
				base.Name = base.Name[:i]
			}
			if !maybe(base) {
				continue
			}
		}
		if !ok || !reflect.DeepEqual(o, e) {
			u.Upserts = append(u.Upserts, *e)
		}
	}
	for k := range old.Routes.All() {
		if _, ok := next.Routes.Get(k); !ok {
			u.Deletes = append(u.Deletes, k)
		}
	}
	if u.Head == nil && len(u.Upserts) == 0 && len(u.Deletes) == 0 {
		return nil
	}
	slices.SortFunc(u.Upserts, func(a, b ir.RouteEntry) int { return keyCmp(a.RouteKey, b.RouteKey) })
	slices.SortFunc(u.Deletes, keyCmp)
	return u
}

// Changes says what an applied update changed.
type Changes struct {
	// Full: the update was the full state; every route is new.
	Full bool
	// Head: the update changed the Gateway-level part (or was the full state).
	Head bool
	// Upserted and Deleted hold the routes the update upserted and deleted.
	Upserted, Deleted map[ir.RouteKey]bool
	// Listeners holds the names of the listeners whose routes changed: those the upserted and
	// deleted routes attach, or attached, to.
	Listeners map[string]bool
}

// Apply returns t with u applied, and what changed; t may be nil before the first update,
// which must then be the full state. A delta whose base is not t's version fails with
// ErrWrongBase; a malformed update (a route on a listener the head does not have, an
// attachment without its route, deleting a route t does not have) fails naming it. t is left
// as it was.
func Apply(t *Table, u *ir.Update) (*Table, Changes, error) {
	ch := Changes{Upserted: make(map[ir.RouteKey]bool, len(u.Upserts)), Deleted: make(map[ir.RouteKey]bool, len(u.Deletes)), Listeners: map[string]bool{}}
	var next *Table
	var routes *routemap.Edit[ir.RouteKey, *ir.RouteEntry]
	switch {
	case t != nil && u.Gateway != t.Gateway:
		return nil, ch, fmt.Errorf("update version %d is for gateway %s, this table is %s's", u.Version, u.Gateway, t.Gateway)
	case u.BaseVersion == 0:
		if u.Head == nil {
			return nil, ch, fmt.Errorf("update version %d: the full state (baseVersion 0) needs a head", u.Version)
		}
		next = &Table{Gateway: u.Gateway, Version: u.Version, Head: *u.Head}
		routes = newRoutes()
		ch.Full, ch.Head = true, true
	case t == nil:
		return nil, ch, fmt.Errorf("update version %d on base %d, but nothing was applied yet: %w", u.Version, u.BaseVersion, ErrWrongBase)
	case u.BaseVersion != t.Version:
		return nil, ch, fmt.Errorf("update version %d on base %d, but version %d is applied: %w", u.Version, u.BaseVersion, t.Version, ErrWrongBase)
	case u.Version <= t.Version:
		return nil, ch, fmt.Errorf("update version %d does not follow its base %d", u.Version, t.Version)
	default:
		next = &Table{Gateway: t.Gateway, Version: u.Version, Head: t.Head, attachments: t.attachments}
		routes = t.Routes.Edit()
		if u.Head != nil {
			next.Head = *u.Head
			ch.Head = true
		}
	}
	listeners := make(map[string]bool, len(next.Head.Listeners))
	for _, l := range next.Head.Listeners {
		listeners[l.Name] = true
	}
	for _, k := range u.Deletes {
		e, ok := routes.Get(k)
		if !ok {
			return nil, ch, fmt.Errorf("update version %d: deletes[%s]: no such route", u.Version, k)
		}
		for _, a := range e.Attachments {
			ch.Listeners[a.Listener] = true
		}
		routes.Delete(k)
		next.attachments -= len(e.Attachments)
		ch.Deleted[k] = true
	}
	for i := range u.Upserts {
		e := &u.Upserts[i]
		if err := checkEntry(e, listeners); err != nil {
			return nil, ch, fmt.Errorf("update version %d: upserts[%d] %s: %w", u.Version, i, e.RouteKey, err)
		}
		if ch.Upserted[e.RouteKey] {
			return nil, ch, fmt.Errorf("update version %d: upserts[%d] %s: upserted twice", u.Version, i, e.RouteKey)
		}
		if old, ok := routes.Get(e.RouteKey); ok {
			for _, a := range old.Attachments {
				ch.Listeners[a.Listener] = true
			}
			next.attachments -= len(old.Attachments)
		}
		next.attachments += len(e.Attachments)
		for _, a := range e.Attachments {
			ch.Listeners[a.Listener] = true
		}
		routes.Set(e.RouteKey, e)
		ch.Upserted[e.RouteKey] = true
	}
	next.Routes = routes.View()
	if ch.Head && !ch.Full {
		// The routes the delta left alone must still fit the new head.
		for k, e := range next.Routes.All() {
			for j, a := range e.Attachments {
				if !listeners[a.Listener] {
					return nil, ch, fmt.Errorf("update version %d: the head drops listener %q, but route %s (attachments[%d]) is not upserted or deleted", u.Version, a.Listener, k, j)
				}
			}
		}
	}
	return next, ch, nil
}

// checkEntry checks what Apply relies on: a known kind, listeners of the head, each at most
// once, and exactly the route field of the key's kind set.
func checkEntry(e *ir.RouteEntry, listeners map[string]bool) error {
	if e.Namespace == "" || e.Name == "" {
		return errors.New("namespace and name are required")
	}
	seen := map[string]bool{}
	for j, a := range e.Attachments {
		if !listeners[a.Listener] {
			return fmt.Errorf("attachments[%d].listener: %q is not a listener of the gateway", j, a.Listener)
		}
		if seen[a.Listener] {
			return fmt.Errorf("attachments[%d].listener: %q named twice", j, a.Listener)
		}
		seen[a.Listener] = true
		set := 0
		for _, p := range []bool{a.HTTP != nil, a.GRPC != nil, a.TCP != nil, a.UDP != nil, a.TLS != nil} {
			if p {
				set++
			}
		}
		var ok bool
		switch e.Kind {
		case ir.KindHTTPRoute:
			ok = a.HTTP != nil
		case ir.KindGRPCRoute:
			ok = a.GRPC != nil
		case ir.KindTCPRoute:
			ok = a.TCP != nil
		case ir.KindUDPRoute:
			ok = a.UDP != nil
		case ir.KindTLSRoute:
			ok = a.TLS != nil
		default:
			return fmt.Errorf("kind: unsupported %q (want HTTPRoute, GRPCRoute, TCPRoute, UDPRoute or TLSRoute)", e.Kind)
		}
		if !ok || set != 1 {
			return fmt.Errorf("attachments[%d]: want exactly the %s field set", j, e.Kind)
		}
	}
	return nil
}

// Keys are the keys of a listener's routes, in the order of its route lists in Snapshot.
type Keys struct {
	HTTP, GRPC, TCP, UDP, TLS []ir.RouteKey
}

// Snapshot assembles the table into a snapshot: the head's listeners in order, each with the
// routes attached to it in precedence order (creation time, namespace, name, then key), as
// translation produces them.
func Snapshot(t *Table) *ir.Snapshot {
	s, _ := assemble(t, nil, true)
	return s
}

// SnapshotKeys is Snapshot with, per listener, the key of each route, and the routes in no
// particular order (sorting them is most of the cost, and the proxy's tables order routes
// themselves). When only is not nil, the listeners it says false for are left without routes
// (the caller does not need them).
func SnapshotKeys(t *Table, only func(l *ir.Listener) bool) (*ir.Snapshot, []Keys) {
	return assemble(t, only, false)
}

func assemble(t *Table, only func(l *ir.Listener) bool, sorted bool) (*ir.Snapshot, []Keys) {
	s := &ir.Snapshot{Schema: ir.SchemaVersion, Version: t.Version, Gateway: t.Gateway, BackendClientCertificate: t.Head.BackendClientCertificate,
		Listeners: slices.Clone(t.Head.Listeners)}
	if s.Listeners == nil {
		s.Listeners = []ir.Listener{}
	}
	keys := make([]Keys, len(s.Listeners))
	index := make(map[string]int, len(s.Listeners))
	for i := range s.Listeners {
		if l := &s.Listeners[i]; only == nil || only(l) {
			index[l.Name] = i
		}
	}
	type ref struct {
		key  ir.RouteKey
		meta *ir.RouteMeta
		a    *ir.Attachment
	}
	lists := make([][5][]ref, len(s.Listeners))
	if len(index) == 0 {
		return s, keys // no listener wants its routes: do not walk them
	}
	for k, e := range t.Routes.All() {
		for j := range e.Attachments {
			a := &e.Attachments[j]
			i, ok := index[a.Listener]
			if !ok {
				continue
			}
			switch {
			case a.HTTP != nil:
				lists[i][0] = append(lists[i][0], ref{k, &a.HTTP.RouteMeta, a})
			case a.GRPC != nil:
				lists[i][1] = append(lists[i][1], ref{k, &a.GRPC.RouteMeta, a})
			case a.TCP != nil:
				lists[i][2] = append(lists[i][2], ref{k, &a.TCP.RouteMeta, a})
			case a.UDP != nil:
				lists[i][3] = append(lists[i][3], ref{k, &a.UDP.RouteMeta, a})
			case a.TLS != nil:
				lists[i][4] = append(lists[i][4], ref{k, &a.TLS.RouteMeta, a})
			}
		}
	}
	for i := range lists {
		l, ks := &s.Listeners[i], &keys[i]
		for kind := range lists[i] {
			rs := lists[i][kind]
			if sorted {
				slices.SortFunc(rs, func(a, b ref) int {
					return cmp.Or(a.meta.CreationTimestamp.Compare(b.meta.CreationTimestamp), strings.Compare(a.meta.Namespace, b.meta.Namespace),
						strings.Compare(a.meta.Name, b.meta.Name), len(a.key.Name)-len(b.key.Name), keyCmp(a.key, b.key))
				})
			}
			for _, r := range rs {
				switch kind {
				case 0:
					l.HTTPRoutes = append(l.HTTPRoutes, *r.a.HTTP)
					ks.HTTP = append(ks.HTTP, r.key)
				case 1:
					l.GRPCRoutes = append(l.GRPCRoutes, *r.a.GRPC)
					ks.GRPC = append(ks.GRPC, r.key)
				case 2:
					l.TCPRoutes = append(l.TCPRoutes, *r.a.TCP)
					ks.TCP = append(ks.TCP, r.key)
				case 3:
					l.UDPRoutes = append(l.UDPRoutes, *r.a.UDP)
					ks.UDP = append(ks.UDP, r.key)
				case 4:
					l.TLSRoutes = append(l.TLSRoutes, *r.a.TLS)
					ks.TLS = append(ks.TLS, r.key)
				}
			}
		}
	}
	return s, keys
}

// Changed is the part of t an update changed, as a snapshot to validate: the head's
// listeners with only the routes upserted, or all routes when the head changed (a listener's
// protocol decides which routes it may carry).
func Changed(t *Table, ch Changes) *ir.Snapshot {
	if ch.Head {
		return Snapshot(t)
	}
	part := &Table{Gateway: t.Gateway, Version: t.Version, Head: t.Head}
	routes := newRoutes()
	for k := range ch.Upserted {
		e, _ := t.Routes.Get(k)
		routes.Set(k, e)
	}
	part.Routes = routes.View()
	return Snapshot(part)
}

// Next is FromSnapshot(s) and DiffRoutes(prev, that table, the routes named in changed) at
// the cost of the routes named: for a snapshot that differs from prev's at most in its head
// and in those routes (a reconcile that translated only them), the other routes are taken
// over from prev instead of being filed again and compared. It returns the table (version
// s.Version) and the delta from prev (nil when nothing changed). A nil changed names every
// route; when the head changed the listeners, or s does not hold prev's other routes as many
// times as prev does, it falls back to the whole comparison.
func Next(prev *Table, s *ir.Snapshot, changed []ir.RouteKey) (*Table, *ir.Update) {
	whole := func() (*Table, *ir.Update) {
		next := FromSnapshot(s)
		var maybe func(ir.RouteKey) bool
		if changed != nil {
			set := make(map[ir.RouteKey]bool, len(changed))
			for _, k := range changed {
				set[k] = true
			}
			maybe = func(k ir.RouteKey) bool { return set[k] }
		}
		return next, DiffRoutes(prev, next, maybe)
	}
	if changed == nil || prev == nil || len(prev.Head.Listeners) != len(s.Listeners) {
		return whole()
	}
	next := &Table{Gateway: s.Gateway, Version: s.Version}
	next.Head.BackendClientCertificate = s.BackendClientCertificate
	next.Head.Listeners = make([]ir.Listener, len(s.Listeners))
	names := make(map[string]bool, len(changed))
	keys := make(map[ir.RouteKey]bool, len(changed))
	for _, k := range changed {
		names[k.Name] = true
		keys[k] = true
	}
	// File the named routes' attachments as FromSnapshot does, in the same order: a key's
	// "#n" depends only on the occurrences of the same route. Count the others.
	fresh := newRoutes()
	others := 0
	for i := range s.Listeners {
		l := &s.Listeners[i]
		next.Head.Listeners[i] = headOf(l)
		if next.Head.Listeners[i].Name != prev.Head.Listeners[i].Name {
			return whole()
		}
		// A named route is filed as a copy: an entry pointing into s's route list would keep
		// that whole list alive as long as the entry lives (tables now outlive snapshots).
		named := func(kind ir.RouteKind, m *ir.RouteMeta) bool {
			if names[m.Name] && keys[ir.RouteKey{Kind: kind, Namespace: m.Namespace, Name: m.Name}] {
				return true
			}
			others++
			return false
		}
		for j := range l.HTTPRoutes {
			if named(ir.KindHTTPRoute, &l.HTTPRoutes[j].RouteMeta) {
				r := l.HTTPRoutes[j]
				add(fresh, ir.KindHTTPRoute, &r.RouteMeta, ir.Attachment{Listener: l.Name, HTTP: &r})
			}
		}
		for j := range l.GRPCRoutes {
			if named(ir.KindGRPCRoute, &l.GRPCRoutes[j].RouteMeta) {
				r := l.GRPCRoutes[j]
				add(fresh, ir.KindGRPCRoute, &r.RouteMeta, ir.Attachment{Listener: l.Name, GRPC: &r})
			}
		}
		for j := range l.TCPRoutes {
			if named(ir.KindTCPRoute, &l.TCPRoutes[j].RouteMeta) {
				r := l.TCPRoutes[j]
				add(fresh, ir.KindTCPRoute, &r.RouteMeta, ir.Attachment{Listener: l.Name, TCP: &r})
			}
		}
		for j := range l.UDPRoutes {
			if named(ir.KindUDPRoute, &l.UDPRoutes[j].RouteMeta) {
				r := l.UDPRoutes[j]
				add(fresh, ir.KindUDPRoute, &r.RouteMeta, ir.Attachment{Listener: l.Name, UDP: &r})
			}
		}
		for j := range l.TLSRoutes {
			if named(ir.KindTLSRoute, &l.TLSRoutes[j].RouteMeta) {
				r := l.TLSRoutes[j]
				add(fresh, ir.KindTLSRoute, &r.RouteMeta, ir.Attachment{Listener: l.Name, TLS: &r})
			}
		}
	}
	// prev's entries of the named routes and their copies; the others must account for the
	// rest of s's attachments.
	var old []*ir.RouteEntry
	for k := range keys {
		for n := 1; ; n++ {
			c := k
			if n > 1 {
				c.Name = k.Name + "#" + strconv.Itoa(n)
			}
			e, ok := prev.Routes.Get(c)
			if !ok {
				break
			}
			old = append(old, e)
		}
	}
	prevOthers := prev.attachments
	for _, e := range old {
		prevOthers -= len(e.Attachments)
	}
	if others != prevOthers {
		return whole()
	}
	u := &ir.Update{Schema: ir.SchemaVersion, Gateway: next.Gateway, Version: next.Version, BaseVersion: prev.Version}
	if !reflect.DeepEqual(prev.Head, next.Head) {
		head := next.Head
		u.Head = &head
	}
	routes := prev.Routes.Edit()
	next.attachments = prev.attachments
	for _, e := range old {
		if _, ok := fresh.Get(e.RouteKey); !ok {
			u.Deletes = append(u.Deletes, e.RouteKey)
		}
		routes.Delete(e.RouteKey)
		next.attachments -= len(e.Attachments)
	}
	for k, e := range fresh.View().All() {
		if o, ok := prev.Routes.Get(k); !ok || !reflect.DeepEqual(o, e) {
			u.Upserts = append(u.Upserts, *e)
		}
		routes.Set(k, e)
		next.attachments += len(e.Attachments)
	}
	next.Routes = routes.View()
	if u.Head == nil && len(u.Upserts) == 0 && len(u.Deletes) == 0 {
		return next, nil
	}
	slices.SortFunc(u.Upserts, func(a, b ir.RouteEntry) int { return keyCmp(a.RouteKey, b.RouteKey) })
	slices.SortFunc(u.Deletes, keyCmp)
	return next, u
}
