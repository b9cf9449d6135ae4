package proxy

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/delta/routemap"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// compiled is a validated snapshot turned into lookup tables. It is immutable once built,
// except for round-robin counters, and is swapped as a whole.
type compiled struct {
	version int64
	gateway ir.NamespacedName
	ports   map[int32]*portConfig
}

// portConfig is everything served on one port: one protocol, one or more listeners.
type portConfig struct {
	port      int32
	protocol  ir.Protocol
	listeners *hostTable[*listenerConfig]
	// first is the first listener in spec order, used for TLS handshakes without SNI.
	first *listenerConfig
	tcp   *tcpConfig
	udp   *udpConfig    // UDP listeners (udp.go)
	tls   *streamConfig // TLS listeners (stream.go)
	// clientAuth is an HTTPS port's client certificate validation; nil: none (frontendtls.go).
	clientAuth *clientAuth
}

type listenerConfig struct {
	name     string
	hostname string
	http     *hostTable[*httpEntry]
	grpc     *hostTable[*grpcEntry]
	hasGRPC  bool
	certs    []tls.Certificate
}

type httpRule struct {
	index    int
	route    *routeInfo
	label    string // "namespace/name/rule", for metrics
	filters  []filter
	backends backendSet
	// timeout bounds the whole request including the backend attempt; 0 means none. With no
	// retries the backendRequest timeout is simply the tighter of the two.
	timeout time.Duration
	retry   *retryPolicy // nil: one attempt (retry.go)
}

type grpcRule struct {
	index    int
	route    *routeInfo
	label    string
	filters  []filter
	backends backendSet
}

type tcpConfig struct {
	route    *routeInfo
	label    string
	backends backendSet
}

// filter is an ir.Filter with its mirror backend resolved.
type filter struct {
	ir.Filter
	mirror *backend
}

// backend is a resolved backendRef: weight, protocol and ready endpoints.
type backend struct {
	name      string
	weight    int64
	h2c       bool
	endpoints []string // "ip:port"
	filters   []filter
	rr        atomic.Uint64
	// tls, when set, makes requests to this backend TLS (backendtls.go).
	tls *backendTLS
}

// next returns the next endpoint in round-robin order, or "" when there is none.
func (b *backend) next() string {
	switch len(b.endpoints) {
	case 0:
		return ""
	case 1:
		return b.endpoints[0]
	}
	return b.endpoints[(b.rr.Add(1)-1)%uint64(len(b.endpoints))]
}

// backendSet chooses a backend per request or connection by weighted random choice: backend
// i is picked with probability weight_i / sum(weights), independently each time, using
// math/rand/v2's per-goroutine ChaCha8 generator (lock-free). Its accuracy is therefore
// binomial: over n picks the share of i has standard deviation sqrt(p(1-p)/n).
type backendSet struct {
	backends []*backend
	total    int64
}

// pick returns a backend, or nil when there are no backends or every weight is zero (the
// caller answers 500).
func (s *backendSet) pick() *backend {
	if s.total <= 0 {
		return nil
	}
	if len(s.backends) == 1 {
		return s.backends[0]
	}
	return s.pickN(rand.Int64N(s.total))
}

func (s *backendSet) pickN(n int64) *backend {
	for _, b := range s.backends {
		if n < b.weight {
			return b
		}
		n -= b.weight
	}
	return nil
}

func compileBackend(b ir.Backend, forceH2C bool) (*backend, error) {
	out := &backend{name: b.Name, weight: int64(b.Weight), h2c: forceH2C || b.Protocol == ir.BackendH2C}
	for _, e := range b.Endpoints {
		out.endpoints = append(out.endpoints, net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port))))
	}
	var err error
	if b.TLS != nil {
		if out.tls, err = compileBackendTLS(b.TLS); err != nil {
			return nil, err
		}
	}
	out.filters, err = compileFilters(b.Filters)
	return out, err
}

func compileBackends(bs []ir.Backend, forceH2C bool) (backendSet, error) {
	var s backendSet
	for _, b := range bs {
		cb, err := compileBackend(b, forceH2C)
		if err != nil {
			return s, err
		}
		if cb.weight > 0 {
			s.total += cb.weight
			s.backends = append(s.backends, cb)
		}
	}
	return s, nil
}

func compileFilters(fs []ir.Filter) ([]filter, error) {
	var out []filter
	for _, f := range fs {
		cf := filter{Filter: f}
		if f.Type == ir.FilterRequestMirror && f.RequestMirror != nil {
			mb, err := compileBackend(f.RequestMirror.Backend, false)
			if err != nil {
				return nil, err
			}
			cf.mirror = mb
		}
		out = append(out, cf)
	}
	return out, nil
}

// compile validates s and builds its lookup tables from scratch. Both take milliseconds for
// 1,000 routes, so they run side by side; the tables of a snapshot that fails validation are
// thrown away (building them must then not crash, hence the recover). Proxy.ApplyUpdate
// compiles only what an update changed (update.go); this is its cold path and the baseline it
// is measured against.
func compile(s *ir.Snapshot) (*compiled, error) {
	if s == nil {
		return nil, s.Validate()
	}
	valid := make(chan error, 1)
	go func() { valid <- s.Validate() }()
	c, err := safeBuild(s, freshRoutes{})
	if verr := <-valid; verr != nil {
		return nil, fmt.Errorf("snapshot %s version %d: %w", s.Gateway, s.Version, verr)
	}
	return c, err
}

// safeBuild is buildTables turning a panic (possible only for an invalid snapshot, whose
// tables are discarded) into an error.
func safeBuild(s *ir.Snapshot, src routeSource) (c *compiled, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("snapshot %s version %d: build tables: %v", s.Gateway, s.Version, r)
		}
	}()
	return buildTables(s, src)
}

// routeSource hands buildTables the compiled form of a listener's certificates and routes:
// freshRoutes compiles them, an update (update.go) reuses what it compiled for the routes the
// update did not upsert. li and j are the listener's and the route's index in the snapshot.
type routeSource interface {
	certs(li int, l *ir.Listener) ([]tls.Certificate, error)
	http(li, j int, r *ir.HTTPRoute) (*compiledHTTPRoute, error)
	grpc(li, j int, r *ir.GRPCRoute) (*compiledGRPCRoute, error)
	// listener returns the listener's tables when they can be had without compiling the
	// listener (unchanged since the previous compile, or patched), else nil.
	listener(li int) (*listenerConfig, error)
	// built reports the listener's tables, compiled or not.
	built(li int, lc *listenerConfig)
	// httpGroups returns the exact-hostname groups of the listener's previous HTTP table that
	// still hold except for the hostnames in dirty, and whether there are any.
	httpGroups(li int) (base routemap.Map[string, []*httpEntry], dirty map[string]bool, ok bool)
}

// freshRoutes compiles everything.
type freshRoutes struct{}

func (freshRoutes) certs(_ int, l *ir.Listener) ([]tls.Certificate, error) {
	return compileCerts(l.TLS)
}
func (freshRoutes) http(_, _ int, r *ir.HTTPRoute) (*compiledHTTPRoute, error) {
	return compileHTTPRoute(r)
}
func (freshRoutes) grpc(_, _ int, r *ir.GRPCRoute) (*compiledGRPCRoute, error) {
	return compileGRPCRoute(r)
}
func (freshRoutes) listener(int) (*listenerConfig, error) { return nil, nil }
func (freshRoutes) built(int, *listenerConfig)            {}
func (freshRoutes) httpGroups(int) (routemap.Map[string, []*httpEntry], map[string]bool, bool) {
	return routemap.Map[string, []*httpEntry]{}, nil, false
}

// buildTables turns a snapshot into lookup tables; only a validated snapshot's tables are used.
func buildTables(s *ir.Snapshot, src routeSource) (*compiled, error) {
	c := &compiled{version: s.Version, gateway: s.Gateway, ports: map[int32]*portConfig{}}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		pc := c.ports[l.Port]
		if pc == nil {
			pc = &portConfig{port: l.Port, protocol: l.Protocol, listeners: newHostTable[*listenerConfig]()}
			c.ports[l.Port] = pc
		}
		lc, err := src.listener(i)
		if err == nil && lc == nil {
			lc, err = compileListener(i, l, src)
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %s version %d: listener %q: %w", s.Gateway, s.Version, l.Name, err)
		}
		src.built(i, lc)
		if pc.first == nil {
			pc.first = lc
		}
		pc.listeners.add(l.Hostname, lc)
		if err == nil && l.Protocol == ir.ProtocolHTTPS {
			err = compileClientAuth(pc, l) // frontendtls.go
		}
		if err == nil && (l.Protocol == ir.ProtocolUDP || l.Protocol == ir.ProtocolTLS) {
			err = compileStream(pc, l, lc) // udp.go, stream.go
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %s version %d: listener %q: %w", s.Gateway, s.Version, l.Name, err)
		}
		if l.Protocol == ir.ProtocolTCP {
			pc.tcp, err = compileTCP(l.TCPRoutes)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s version %d: listener %q: %w", s.Gateway, s.Version, l.Name, err)
			}
		}
	}
	return c, nil
}

func compileCerts(t *ir.TLS) ([]tls.Certificate, error) {
	if t == nil {
		return nil, nil
	}
	var out []tls.Certificate
	for _, cert := range t.Certificates {
		kp, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls certificate %q: %w", cert.Name, err)
		}
		out = append(out, kp)
	}
	return out, nil
}

// compiledHTTPRoute is one HTTPRoute's match entries in rule, then match order. It depends on
// the route alone (not on its listener), and is shared by every table built from an equal
// route: its entries, rules and backends are never modified after compiling, except for the
// backends' round-robin counters.
type compiledHTTPRoute struct {
	info    *routeInfo
	entries []*httpEntry
}

type compiledGRPCRoute struct {
	info    *routeInfo
	entries []*grpcEntry
}

func compileHTTPRoute(r *ir.HTTPRoute) (*compiledHTTPRoute, error) {
	ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
	out := &compiledHTTPRoute{info: ri}
	for _, rule := range r.Rules {
		hr := &httpRule{index: rule.Index, route: ri, label: ri.key + "/" + strconv.Itoa(rule.Index)}
		if rule.Name != "" {
			hr.label += "/" + rule.Name // named rule: unnamed labels have no fourth segment
		}
		var err error
		if hr.filters, err = compileFilters(rule.Filters); err != nil {
			return nil, fmt.Errorf("httproute %s rule %d: %w", ri.key, rule.Index, err)
		}
		if hr.backends, err = compileBackends(rule.Backends, false); err != nil {
			return nil, fmt.Errorf("httproute %s rule %d: %w", ri.key, rule.Index, err)
		}
		if t := rule.Timeouts; t != nil {
			hr.timeout = t.Request.D()
			if b := t.BackendRequest.D(); b > 0 && (hr.timeout == 0 || b < hr.timeout) && rule.Retry == nil {
				hr.timeout = b // with retries it bounds each attempt instead (retry.go)
			}
		}
		hr.retry = compileRetry(rule.Retry, rule.Timeouts)
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []ir.HTTPMatch{{}}
		}
		for mi, m := range matches {
			e, err := compileHTTPMatch(m)
			if err != nil {
				return nil, fmt.Errorf("httproute %s rule %d match %d: %w", ri.key, rule.Index, mi, err)
			}
			e.route, e.rule, e.matchIdx = ri, hr, mi
			out.entries = append(out.entries, &e)
		}
	}
	return out, nil
}

func compileGRPCRoute(r *ir.GRPCRoute) (*compiledGRPCRoute, error) {
	ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
	out := &compiledGRPCRoute{info: ri}
	for _, rule := range r.Rules {
		gr := &grpcRule{index: rule.Index, route: ri, label: ri.key + "/" + strconv.Itoa(rule.Index)}
		if rule.Name != "" {
			gr.label += "/" + rule.Name
		}
		var err error
		if gr.filters, err = compileFilters(rule.Filters); err != nil {
			return nil, fmt.Errorf("grpcroute %s rule %d: %w", ri.key, rule.Index, err)
		}
		// gRPC always needs HTTP/2 to the backend.
		if gr.backends, err = compileBackends(rule.Backends, true); err != nil {
			return nil, fmt.Errorf("grpcroute %s rule %d: %w", ri.key, rule.Index, err)
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []ir.GRPCMatch{{}}
		}
		for mi, m := range matches {
			e, err := compileGRPCMatch(m)
			if err != nil {
				return nil, fmt.Errorf("grpcroute %s rule %d match %d: %w", ri.key, rule.Index, mi, err)
			}
			e.route, e.rule, e.matchIdx = ri, gr, mi
			out.entries = append(out.entries, &e)
		}
	}
	return out, nil
}

// compileListener assembles a listener's host tables from its compiled routes. The tables
// are new for every compile (a published table is never modified); the entries in them may be
// shared with earlier compiles'.
func compileListener(li int, l *ir.Listener, src routeSource) (*listenerConfig, error) {
	lc := &listenerConfig{name: l.Name, hostname: l.Hostname,
		http: newHostTable[*httpEntry](), grpc: newHostTable[*grpcEntry]()}
	var err error
	if lc.certs, err = src.certs(li, l); err != nil {
		return nil, err
	}
	// Groups of exact hostnames the update did not change are taken over as they are (their
	// routes and compiled entries are the same); only the others are filed again.
	base, dirty, fromBase := src.httpGroups(li)
	if fromBase {
		lc.http.exact = base
		for h := range dirty {
			lc.http.setExact(h, nil)
		}
	}
	listenerHost := []string{l.Hostname}
	hostsOf := func(m *ir.RouteMeta) []string {
		if len(m.Hostnames) > 0 {
			return m.Hostnames
		}
		return listenerHost
	}
	for j := range l.HTTPRoutes {
		r := &l.HTTPRoutes[j]
		cr, err := src.http(li, j, r)
		if err != nil {
			return nil, err
		}
		for _, h := range hostsOf(&r.RouteMeta) {
			if fromBase && exactHost(h) && !dirty[h] {
				continue // the group is base's
			}
			lc.http.addAll(h, cr.entries)
		}
	}
	for j := range l.GRPCRoutes {
		lc.hasGRPC = true
		r := &l.GRPCRoutes[j]
		cr, err := src.grpc(li, j, r)
		if err != nil {
			return nil, err
		}
		for _, h := range hostsOf(&r.RouteMeta) {
			lc.grpc.addAll(h, cr.entries)
		}
	}
	lc.http.sort(httpLess)
	lc.grpc.sort(grpcLess)
	return lc, nil
}

// compileTCP picks the route a TCP listener forwards to. Several TCPRoutes on one listener
// conflict (a connection carries no host or path to choose by); the oldest route wins, then
// namespace/name, as for HTTP ties.
func compileTCP(routes []ir.TCPRoute) (*tcpConfig, error) {
	var best *tcpConfig
	for _, r := range routes {
		ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
		if best != nil && !routeTieLess(ri, best.route, 0, 0, 0, 0) {
			continue
		}
		bs, err := compileBackends(r.Backends, false)
		if err != nil {
			return nil, fmt.Errorf("tcproute %s: %w", ri.key, err)
		}
		best = &tcpConfig{route: ri, label: ri.key, backends: bs}
	}
	return best, nil
}
