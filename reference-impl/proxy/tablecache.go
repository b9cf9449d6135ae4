package proxy

import (
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// tableCache makes compiling a snapshot cost what changed since the previous one rather than
// what it holds. Consecutive snapshots differ in a route or two, but validating and compiling
// all 1,000 routes of one took ~2.7 ms on the propagation path. The cache keeps, per listener
// and route, a deep copy of the route last compiled and its compiled form; a route equal to
// its copy is neither validated nor compiled again (both depend on the route alone), and its
// compiled entries go into the new snapshot's tables. Tables are new for every snapshot (a
// published table is never modified), but an exact-hostname group whose routes are all
// unchanged and in the same order is taken over from the previous table instead of being
// filed and sorted again.
//
// Only a snapshot that validated and compiled updates the cache, so everything in it passed
// validation; routes missing from that snapshot are dropped.
type tableCache struct {
	mu        sync.Mutex // held for a whole compile
	gen       uint64     // counts successful compiles
	http      map[routeKey]*cachedHTTP
	grpc      map[routeKey]*cachedGRPC
	certs     map[string]*cachedCerts    // by listener name
	listeners map[string]*cachedListener // by listener name
}

// routeKey is where a route sits in a snapshot. The listener is part of it because a route
// attached to two listeners can differ between them (its hostnames are intersected with each
// listener's).
type routeKey struct{ listener, namespace, name string }

type cachedHTTP struct {
	route ir.HTTPRoute // deep copy of the route compiled
	c     *compiledHTTPRoute
	gen   uint64 // last successful compile whose snapshot had it
}

type cachedGRPC struct {
	route ir.GRPCRoute
	c     *compiledGRPCRoute
	gen   uint64
}

type cachedCerts struct {
	certs  []ir.Certificate // deep copy
	parsed []tls.Certificate
	gen    uint64
}

// cachedListener is a listener of the last successful compile: its routes in order and the
// exact-hostname groups of its HTTP table.
type cachedListener struct {
	hostname string
	http     []*cachedHTTP
	exact    map[string][]*httpEntry
}

// parallelValidation is how many changed routes make validating beside building the tables
// worth a goroutine (the first snapshot, or an endpoint change shared by many routes).
const parallelValidation = 64

// compile is the package-level compile, reusing what the cache compiled for equal routes.
// Its errors read as compile's.
func (tc *tableCache) compile(s *ir.Snapshot) (*compiled, error) {
	c, commit, err := tc.prepare(s)
	if err != nil {
		return nil, err
	}
	commit()
	return c, nil
}

// prepare is compile leaving the cache update to commit, which the caller must call (once) when
// c is built without error; until then other compiles wait. Proxy.Apply commits after it
// published c: the update copies every new route, which for a change to many routes costs
// about as much as compiling them, and requests need not wait for it.
func (tc *tableCache) prepare(s *ir.Snapshot) (c *compiled, commit func(), err error) {
	if s == nil {
		return nil, nil, s.Validate()
	}
	tc.mu.Lock()
	defer func() {
		if err != nil {
			tc.mu.Unlock()
		}
	}()
	src := tc.plan(s)
	var verr error
	if src.changed >= parallelValidation {
		valid := make(chan error, 1)
		go func() { valid <- s.ValidateExcept(src.known) }()
		c, err = safeBuild(s, src)
		verr = <-valid
	} else if verr = s.ValidateExcept(src.known); verr == nil {
		c, err = safeBuild(s, src)
	}
	if verr != nil {
		return nil, nil, fmt.Errorf("snapshot %s version %d: %w", s.Gateway, s.Version, verr)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, func() {
		defer tc.mu.Unlock()
		tc.commit(s, src)
	}, nil
}

// matchWindow is how many of a listener's previous routes are tried for the next route,
// starting after the last one found: a deletion or replacement skips one. A route further
// away is found through the cache's map.
const matchWindow = 4

// findHTTP returns the index in prev of the route named as r, trying from index from on, or -1.
func findHTTP(prev []*cachedHTTP, from int, r *ir.HTTPRoute) int {
	for k := from; k < len(prev) && k < from+matchWindow; k++ {
		if p := &prev[k].route; p.Name == r.Name && p.Namespace == r.Namespace {
			return k
		}
	}
	return -1
}

// plan looks every route of s up in the cache and works out which exact-hostname groups of
// each listener's previous HTTP table still hold: those no added, removed, changed or moved
// route is filed under.
func (tc *tableCache) plan(s *ir.Snapshot) *cachedRoutes {
	src := &cachedRoutes{listeners: make([]listenerPlan, len(s.Listeners))}
	for i := range s.Listeners {
		l, lp := &s.Listeners[i], &src.listeners[i]
		if c := tc.certs[l.Name]; c != nil && sameCerts(c.certs, l.TLS) {
			lp.certs = c
		}
		prev := tc.listeners[l.Name]
		if prev != nil && prev.hostname != l.Hostname {
			prev = nil // routes without hostnames move
		}
		var prevHTTP []*cachedHTTP
		if prev != nil {
			prevHTTP = prev.http
		}
		dirty := &hostSet{}
		markHosts := func(m *ir.RouteMeta) {
			for _, h := range m.Hostnames {
				dirty.add(h)
			}
			if len(m.Hostnames) == 0 {
				dirty.add(l.Hostname)
			}
		}
		if len(l.HTTPRoutes) > 0 {
			lp.http = make([]*cachedHTTP, len(l.HTTPRoutes))
		}
		// inPlace[k]: prevHTTP[k] is in s, unchanged, in the same order relative to the
		// others found so (a position, not a route: a snapshot may repeat a route).
		inPlace := make([]bool, len(prevHTTP))
		next := 0
		for j := range l.HTTPRoutes {
			r := &l.HTTPRoutes[j]
			var c *cachedHTTP
			k := findHTTP(prevHTTP, next, r)
			if k >= 0 {
				c, next = prevHTTP[k], k+1
			} else {
				c = tc.http[routeKey{l.Name, r.Namespace, r.Name}]
			}
			if c != nil && sameHTTPRoute(&c.route, r) {
				lp.http[j] = c
				if k >= 0 {
					inPlace[k] = true
					continue
				}
			} else {
				src.changed++
			}
			if prev != nil {
				markHosts(&r.RouteMeta)
			}
		}
		if prev != nil {
			// Routes gone, changed or moved leave the groups they were filed under.
			for k, c := range prevHTTP {
				if !inPlace[k] {
					markHosts(&c.route.RouteMeta)
				}
			}
			// Taking over groups pays off when most are kept (the usual one-route change);
			// when most changed, filing every route again is cheaper than cloning the map.
			if dirty.len() <= len(prev.exact)/4 {
				lp.base, lp.dirty = prev.exact, dirty
			}
		}
		if len(l.GRPCRoutes) > 0 {
			lp.grpc = make([]*cachedGRPC, len(l.GRPCRoutes))
		}
		for j := range l.GRPCRoutes {
			r := &l.GRPCRoutes[j]
			if c := tc.grpc[routeKey{l.Name, r.Namespace, r.Name}]; c != nil && sameGRPCRoute(&c.route, r) {
				lp.grpc[j] = c
			} else {
				src.changed++
			}
		}
	}
	return src
}

// commit records what compiling s produced and forgets routes s no longer has.
func (tc *tableCache) commit(s *ir.Snapshot, src *cachedRoutes) {
	tc.gen++
	gen := tc.gen
	if tc.http == nil {
		tc.http, tc.grpc, tc.certs = map[routeKey]*cachedHTTP{}, map[routeKey]*cachedGRPC{}, map[string]*cachedCerts{}
	}
	listeners := make(map[string]*cachedListener, len(s.Listeners))
	for i := range s.Listeners {
		l, lp := &s.Listeners[i], &src.listeners[i]
		if lp.certs == nil {
			lp.certs = &cachedCerts{certs: cloneCerts(l.TLS), parsed: lp.newCerts}
			tc.certs[l.Name] = lp.certs
		}
		lp.certs.gen = gen
		for j, c := range lp.http {
			if c == nil {
				r := &l.HTTPRoutes[j]
				c = &cachedHTTP{route: cloneHTTPRoute(r), c: lp.newHTTP[j]}
				tc.http[routeKey{l.Name, r.Namespace, r.Name}] = c
				lp.http[j] = c
			}
			c.gen = gen
		}
		for j, c := range lp.grpc {
			if c == nil {
				r := &l.GRPCRoutes[j]
				c = &cachedGRPC{route: cloneGRPCRoute(r), c: lp.newGRPC[j]}
				tc.grpc[routeKey{l.Name, r.Namespace, r.Name}] = c
			}
			c.gen = gen
		}
		listeners[l.Name] = &cachedListener{hostname: l.Hostname, http: lp.http, exact: lp.exact}
	}
	// Every HTTP route in the cache is in a listener's list of the previous commit, so that
	// is where the ones s no longer has are found (cheaper than ranging over the map).
	for name, cl := range tc.listeners {
		for _, c := range cl.http {
			if k := (routeKey{name, c.route.Namespace, c.route.Name}); c.gen != gen && tc.http[k] == c {
				delete(tc.http, k)
			}
		}
	}
	tc.listeners = listeners
	for k, c := range tc.grpc {
		if c.gen != gen {
			delete(tc.grpc, k)
		}
	}
	for k, c := range tc.certs {
		if c.gen != gen {
			delete(tc.certs, k)
		}
	}
}

// cachedRoutes is the routeSource of one compile: cached entries where plan found an equal
// route, fresh compiles (remembered for commit) elsewhere. The validation goroutine reads it
// through known while buildTables fills in the other fields, which known does not read.
type cachedRoutes struct {
	listeners []listenerPlan
	changed   int // routes not found in the cache
}

type listenerPlan struct {
	certs *cachedCerts
	http  []*cachedHTTP // per route; nil where the route must be compiled
	grpc  []*cachedGRPC
	// base and dirty are for httpGroups; base is nil when the listener is new or its
	// hostname changed.
	base  map[string][]*httpEntry
	dirty *hostSet
	// What buildTables compiled.
	newCerts []tls.Certificate
	newHTTP  []*compiledHTTPRoute // by route index
	newGRPC  []*compiledGRPCRoute
	exact    map[string][]*httpEntry
}

// known reports whether a route passed validation before (it is in the cache).
func (src *cachedRoutes) known(li int, kind ir.RouteKind, j int) bool {
	lp := &src.listeners[li]
	switch kind {
	case ir.KindHTTPRoute:
		return lp.http[j] != nil
	case ir.KindGRPCRoute:
		return lp.grpc[j] != nil
	}
	return false
}

func (src *cachedRoutes) certs(li int, l *ir.Listener) ([]tls.Certificate, error) {
	lp := &src.listeners[li]
	if lp.certs != nil {
		return lp.certs.parsed, nil
	}
	var err error
	lp.newCerts, err = compileCerts(l.TLS)
	return lp.newCerts, err
}

func (src *cachedRoutes) http(li, j int, r *ir.HTTPRoute) (*compiledHTTPRoute, error) {
	lp := &src.listeners[li]
	if c := lp.http[j]; c != nil {
		return c.c, nil
	}
	cr, err := compileHTTPRoute(r)
	if err != nil {
		return nil, err
	}
	if lp.newHTTP == nil {
		lp.newHTTP = make([]*compiledHTTPRoute, len(lp.http))
	}
	lp.newHTTP[j] = cr
	return cr, nil
}

func (src *cachedRoutes) grpc(li, j int, r *ir.GRPCRoute) (*compiledGRPCRoute, error) {
	lp := &src.listeners[li]
	if c := lp.grpc[j]; c != nil {
		return c.c, nil
	}
	cr, err := compileGRPCRoute(r)
	if err != nil {
		return nil, err
	}
	if lp.newGRPC == nil {
		lp.newGRPC = make([]*compiledGRPCRoute, len(lp.grpc))
	}
	lp.newGRPC[j] = cr
	return cr, nil
}

func (src *cachedRoutes) httpGroups(li int) (map[string][]*httpEntry, *hostSet) {
	lp := &src.listeners[li]
	return lp.base, lp.dirty
}

func (src *cachedRoutes) built(li int, lc *listenerConfig) { src.listeners[li].exact = lc.http.exact }
