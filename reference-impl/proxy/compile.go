package proxy

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"

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

// compile validates s and builds its lookup tables. Both take milliseconds for 1,000 routes
// and sit on the propagation path, so they run side by side; the tables of a snapshot that
// fails validation are thrown away (building them must then not crash, hence the recover).
func compile(s *ir.Snapshot) (*compiled, error) {
	valid := make(chan error, 1)
	go func() { valid <- s.Validate() }()
	c, err := func() (c *compiled, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("snapshot %s version %d: build tables: %v", s.Gateway, s.Version, r)
			}
		}()
		return buildTables(s)
	}()
	if verr := <-valid; verr != nil {
		return nil, fmt.Errorf("snapshot %s version %d: %w", s.Gateway, s.Version, verr)
	}
	return c, err
}

// buildTables turns a snapshot into lookup tables; only a validated snapshot's tables are used.
func buildTables(s *ir.Snapshot) (*compiled, error) {
	c := &compiled{version: s.Version, gateway: s.Gateway, ports: map[int32]*portConfig{}}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		pc := c.ports[l.Port]
		if pc == nil {
			pc = &portConfig{port: l.Port, protocol: l.Protocol, listeners: newHostTable[*listenerConfig]()}
			c.ports[l.Port] = pc
		}
		lc, err := compileListener(l)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s version %d: listener %q: %w", s.Gateway, s.Version, l.Name, err)
		}
		if pc.first == nil {
			pc.first = lc
		}
		pc.listeners.add(l.Hostname, lc)
		if l.Protocol == ir.ProtocolTCP {
			pc.tcp, err = compileTCP(l.TCPRoutes)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s version %d: listener %q: %w", s.Gateway, s.Version, l.Name, err)
			}
		}
	}
	return c, nil
}

func compileListener(l *ir.Listener) (*listenerConfig, error) {
	lc := &listenerConfig{name: l.Name, hostname: l.Hostname,
		http: newHostTable[*httpEntry](), grpc: newHostTable[*grpcEntry]()}
	if l.TLS != nil {
		for _, cert := range l.TLS.Certificates {
			kp, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
			if err != nil {
				return nil, fmt.Errorf("tls certificate %q: %w", cert.Name, err)
			}
			lc.certs = append(lc.certs, kp)
		}
	}
	hostsOf := func(m ir.RouteMeta) []string {
		if len(m.Hostnames) > 0 {
			return m.Hostnames
		}
		return []string{l.Hostname}
	}
	for _, r := range l.HTTPRoutes {
		ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
		var entries []*httpEntry
		for _, rule := range r.Rules {
			hr := &httpRule{index: rule.Index, route: ri, label: ri.key + "/" + strconv.Itoa(rule.Index)}
			var err error
			if hr.filters, err = compileFilters(rule.Filters); err != nil {
				return nil, fmt.Errorf("httproute %s rule %d: %w", ri.key, rule.Index, err)
			}
			if hr.backends, err = compileBackends(rule.Backends, false); err != nil {
				return nil, fmt.Errorf("httproute %s rule %d: %w", ri.key, rule.Index, err)
			}
			if t := rule.Timeouts; t != nil {
				hr.timeout = t.Request.D()
				if b := t.BackendRequest.D(); b > 0 && (hr.timeout == 0 || b < hr.timeout) {
					hr.timeout = b
				}
			}
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
				entries = append(entries, &e)
			}
		}
		for _, h := range hostsOf(r.RouteMeta) {
			for _, e := range entries {
				lc.http.add(h, e)
			}
		}
	}
	for _, r := range l.GRPCRoutes {
		lc.hasGRPC = true
		ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
		var entries []*grpcEntry
		for _, rule := range r.Rules {
			gr := &grpcRule{index: rule.Index, route: ri, label: ri.key + "/" + strconv.Itoa(rule.Index)}
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
				entries = append(entries, &e)
			}
		}
		for _, h := range hostsOf(r.RouteMeta) {
			for _, e := range entries {
				lc.grpc.add(h, e)
			}
		}
	}
	lc.http.each(sortHTTP)
	lc.grpc.each(sortGRPC)
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
