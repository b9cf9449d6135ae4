package translate

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Memo carries route translations from one Translate to the next, so a change to one route
// costs one route's translation instead of all of them. With 1,000 routes a full translation
// takes ~3 ms, on the create-to-serving path of every route change (issue: route propagation
// p99 <= 30 ms on a 2-core machine that also runs the API server). A memoised route's IR is the
// same memory from one snapshot to the next, which delivery's per-route diff (package delta)
// sees at once.
//
// A route's result depends on the route, on the backend Services it names (with their
// EndpointSlices) and on everything else translation reads: Gateways and their classes
// (listener state), Namespaces, Secrets and ReferenceGrants. Routes are keyed by UID and
// metadata.generation (status writes do not bump it, spec changes always do). Each memoised
// route records the version of every Service it looked up, so endpoint churn re-translates only
// the routes of that Service; the rest is summarised by one fingerprint of every object's
// identity and version, and when it changes every route is translated again. Objects with
// neither a generation nor a resourceVersion (hand-built test input) cannot be versioned, so
// their presence turns the memo off for that call.
//
// The output is the same as Translate's; TestMemoMatchesTranslate checks it over the golden
// inputs and a sequence of changes.
type Memo struct {
	mu     sync.Mutex
	seed   maphash.Seed
	env    uint64
	gen    uint64
	routes map[memoKey]*routeMemo
	// services holds, during a call, each Service's version: its own and its EndpointSlices'.
	services map[types.NamespacedName]uint64
	// sizes holds each listener's route counts (HTTP, gRPC, TCP, UDP, TLS) after the last call, to size
	// its lists up front instead of growing them route by route.
	sizes map[listenerKey][5]int
	// last is the translator state after the last memoised Translate or Routes, which Routes
	// updates in place; nil when there is none to build on.
	last *translator
	// order is each route kind's byAge order after the last call, by UID (see sortedByAge).
	order map[string][]types.UID
	// Stats of the last call, for tests and debug logs.
	Hits, Misses int
}

// NewMemo returns an empty Memo.
func NewMemo() *Memo {
	return &Memo{seed: maphash.MakeSeed(), routes: map[memoKey]*routeMemo{}, order: map[string][]types.UID{}, sizes: map[listenerKey][5]int{}}
}

type memoKey struct {
	kind string
	key  types.NamespacedName
}

// routeMemo is one route's translation.
type routeMemo struct {
	uid  types.UID
	gen  int64
	used uint64
	// status is nil for a route with no parent of ours (then attached is empty too).
	status   []gwv1.RouteParentStatus
	attached []memoAttach
	// deps are the Services the route's backends named, with their versions then (0: absent).
	deps []serviceDep
}

type serviceDep struct {
	key     types.NamespacedName
	version uint64
}

// memoAttach is the route as attached to one listener.
type memoAttach struct {
	gateway  types.NamespacedName
	listener int
	route    any // ir.HTTPRoute, ir.GRPCRoute, ir.TCPRoute, ir.UDPRoute or ir.TLSRoute
}

// Translate is Translate(in) using and refreshing the memo.
func (m *Memo) Translate(in *Input) *Output {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = nil
	env, ok := m.fingerprint(in)
	if !ok {
		m.routes = map[memoKey]*routeMemo{}
		m.Hits, m.Misses = 0, 0
		return Translate(in)
	}
	if env != m.env {
		// Something routes depend on changed: nothing cached is trusted.
		clear(m.routes)
		m.env = env
	}
	m.gen++
	m.Hits, m.Misses = 0, 0
	out := translateWith(in, m)
	for k, rm := range m.routes {
		if rm.used != m.gen {
			delete(m.routes, k) // the route is gone
		}
	}
	for k := range m.sizes {
		if _, ok := out.Gateways[k.gateway]; !ok {
			delete(m.sizes, k)
		}
	}
	return out
}

// fingerprint summarises every input except routes; ok is false when an object carries no
// version to tell its changes by.
func (m *Memo) fingerprint(in *Input) (uint64, bool) {
	var sum uint64
	ok := true
	var h maphash.Hash
	h.SetSeed(m.seed)
	hash := func(kind, ns, name string, uid types.UID, gen int64, rv string, deleting bool) uint64 {
		if gen == 0 && rv == "" {
			ok = false
			return 0
		}
		h.Reset()
		h.WriteString(kind)
		h.WriteByte(0)
		h.WriteString(ns)
		h.WriteByte(0)
		h.WriteString(name)
		h.WriteByte(0)
		h.WriteString(string(uid))
		h.WriteByte(0)
		if gen != 0 {
			// Generation, not resourceVersion: the controller's own status writes must not
			// invalidate every route.
			h.WriteString(strconv.FormatInt(gen, 10))
		} else {
			h.WriteString(rv)
		}
		if deleting {
			h.WriteByte(1)
		}
		return h.Sum64()
	}
	// Sums do not depend on the (unspecified) order of the lists.
	add := func(kind, ns, name string, uid types.UID, gen int64, rv string, deleting bool) {
		sum += hash(kind, ns, name, uid, gen, rv, deleting)
	}
	h.Reset()
	h.WriteString(in.ControllerName)
	sum += h.Sum64()
	for _, o := range in.GatewayClasses {
		add("GatewayClass", "", o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	for _, o := range in.Gateways {
		add("Gateway", o.Namespace, o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	for _, o := range in.ReferenceGrants {
		add("ReferenceGrant", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	for _, o := range in.Namespaces {
		add("Namespace", "", o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	// Services and their EndpointSlices are versioned per Service (see routeMemo.deps).
	m.services = make(map[types.NamespacedName]uint64, len(in.Services))
	for _, o := range in.Services {
		m.services[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}] += hash("Service", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false) | 1
	}
	for _, o := range in.EndpointSlices {
		if svc := o.Labels[discoveryv1.LabelServiceName]; svc != "" { // translation ignores the rest
			m.services[types.NamespacedName{Namespace: o.Namespace, Name: svc}] += hash("EndpointSlice", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
		}
	}
	for _, o := range in.Secrets {
		add("Secret", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	for _, o := range in.ConfigMaps {
		add("ConfigMap", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	for _, o := range in.BackendTLSPolicies {
		add("BackendTLSPolicy", o.Namespace, o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	h.Reset()
	fmt.Fprint(&h, "BackendTLSPolicies", len(in.BackendTLSPolicies))
	sum += h.Sum64()
	// The counts guard against two changes cancelling out in the sum.
	h.Reset()
	fmt.Fprint(&h, len(in.GatewayClasses), len(in.Gateways), len(in.ReferenceGrants), len(in.Namespaces), len(in.Secrets), len(in.ConfigMaps))
	sum += h.Sum64()
	return sum, ok
}

// lookup returns the memo of a route when it is still current, and marks it used.
func (m *Memo) lookup(kind string, r interface {
	GetNamespace() string
	GetName() string
	GetUID() types.UID
	GetGeneration() int64
}) (*routeMemo, bool) {
	k := memoKey{kind, types.NamespacedName{Namespace: r.GetNamespace(), Name: r.GetName()}}
	rm, ok := m.routes[k]
	if ok && rm.uid == r.GetUID() && rm.gen == r.GetGeneration() && rm.uid != "" && rm.gen != 0 && m.depsCurrent(rm) {
		rm.used = m.gen
		m.Hits++
		return rm, true
	}
	m.Misses++
	if r.GetUID() == "" || r.GetGeneration() == 0 {
		delete(m.routes, k)
		return nil, false // not versioned: translate it every time
	}
	rm = &routeMemo{uid: r.GetUID(), gen: r.GetGeneration(), used: m.gen}
	m.routes[k] = rm
	return rm, false
}

// depsCurrent says whether every Service the route depended on has the version it had then.
func (m *Memo) depsCurrent(rm *routeMemo) bool {
	for _, d := range rm.deps {
		if m.services[d.key] != d.version {
			return false
		}
	}
	return true
}

type listenerKey struct {
	gateway types.NamespacedName
	index   int
}

// presize gives a listener's IR lists the capacity its last translation needed (a little
// more, for the route being added); nil m does nothing.
func (m *Memo) presize(ls *listenerState) {
	if m == nil {
		return
	}
	n, ok := m.sizes[listenerKey{ls.gateway, ls.index}]
	if !ok {
		return
	}
	ls.ir = &ir.Listener{HTTPRoutes: make([]ir.HTTPRoute, 0, n[0]+4), GRPCRoutes: make([]ir.GRPCRoute, 0, n[1]+4), TCPRoutes: make([]ir.TCPRoute, 0, n[2]+4),
		UDPRoutes: make([]ir.UDPRoute, 0, n[3]), TLSRoutes: make([]ir.TLSRoute, 0, n[4])}
}

// recordSize keeps a translated listener's route counts for presize; nil m does nothing.
func (m *Memo) recordSize(ls *listenerState) {
	if m == nil {
		return
	}
	if ls.ir == nil {
		m.sizes[listenerKey{ls.gateway, ls.index}] = [5]int{}
		return
	}
	m.sizes[listenerKey{ls.gateway, ls.index}] = [5]int{len(ls.ir.HTTPRoutes), len(ls.ir.GRPCRoutes), len(ls.ir.TCPRoutes), len(ls.ir.UDPRoutes), len(ls.ir.TLSRoutes)}
}
