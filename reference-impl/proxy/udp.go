package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// UDP listeners (UDPRoute). A flow is one client address:port sending to the listener's
// port. Its first datagram picks a backend by weight (backendSet.pick, the same weighted
// random choice as TCP connections and HTTP requests) and an endpoint of it (round robin),
// and the flow gets a connected socket to that endpoint; every later datagram of the flow
// goes there, and whatever the endpoint answers goes back to the client from the listener's
// port. A flow that has seen no datagram either way for the idle timeout ends; the client's
// next datagram starts a new flow, which may pick another backend.

// defaultUDPIdleTimeout is Envoy's udp_proxy idle_timeout default.
const defaultUDPIdleTimeout = 60 * time.Second

// maxDatagram is the largest UDP payload (IPv4: 65,535 - 8 - 20).
const maxDatagram = 65507

// udpConfig is what a UDP listener forwards to: the oldest attached route (several
// UDPRoutes on one listener conflict, as TCPRoutes do: a datagram carries nothing to choose
// by).
type udpConfig struct {
	route    *routeInfo
	label    string
	backends backendSet
	idle     time.Duration
}

func compileUDP(l *ir.Listener) (*udpConfig, error) {
	var best *udpConfig
	for _, r := range l.UDPRoutes {
		ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
		if best != nil && !routeTieLess(ri, best.route, 0, 0, 0, 0) {
			continue
		}
		bs, err := compileBackends(r.Backends, false)
		if err != nil {
			return nil, fmt.Errorf("udproute %s: %w", ri.key, err)
		}
		best = &udpConfig{route: ri, label: ri.key, backends: bs}
	}
	idle := l.UDPIdleTimeout.D()
	if best == nil {
		// No route: datagrams are dropped, but the idle timeout still ends flows of an
		// earlier snapshot.
		best = &udpConfig{}
	}
	best.idle = idle
	return best, nil
}

// udpServer serves one UDP port.
type udpServer struct {
	p    *Proxy
	port int32
	conn *net.UDPConn

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
}

// udpFlow is one client's flow: its socket to the chosen endpoint.
type udpFlow struct {
	client  netip.AddrPort
	up      *net.UDPConn
	route   string
	backend string
	idle    time.Duration
	last    atomic.Int64 // UnixNano of the last datagram either way
}

// udpListener stands in for a net.Listener on a UDP port, so that code handling every
// port's socket (Addr, closing on a failed Apply) needs no UDP case. Accept is never called.
type udpListener struct{ conn *net.UDPConn }

func (l udpListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (l udpListener) Close() error              { return l.conn.Close() }
func (l udpListener) Addr() net.Addr            { return l.conn.LocalAddr() }

// listenUDP binds a UDP port.
func (p *Proxy) listenUDP(pc *portConfig) (*portServer, error) {
	addr := net.JoinHostPort(p.opts.BindAddress, strconv.Itoa(int(pc.port)))
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for UDP port %d: %w", addr, pc.port, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for UDP port %d: %w", addr, pc.port, err)
	}
	s := &udpServer{p: p, port: pc.port, conn: conn, flows: map[netip.AddrPort]*udpFlow{}}
	return &portServer{port: pc.port, protocol: pc.protocol, ln: udpListener{conn}, udp: s}, nil
}

func (s *udpServer) config() *udpConfig {
	if c := s.p.cur.Load(); c != nil {
		if pc := c.ports[s.port]; pc != nil {
			return pc.udp
		}
	}
	return nil
}

func (s *udpServer) serve() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.p.log.Debug("udp read failed", "port", s.port, "error", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		f := s.flow(from)
		if f == nil {
			continue
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := f.up.Write(buf[:n]); err != nil {
			// ICMP port unreachable from an earlier datagram, or the endpoint is gone: the
			// datagram is lost, as it would be without a proxy.
			s.p.metrics.udp(f.route, f.backend, "send_failed")
			continue
		}
		s.p.metrics.udp(f.route, f.backend, "forwarded")
	}
}

// flow returns the client's flow, starting one when there is none; nil when the datagram is
// to be dropped (no route, no backend, no endpoint, or the port is closing).
func (s *udpServer) flow(client netip.AddrPort) *udpFlow {
	s.mu.Lock()
	f, ok := s.flows[client]
	s.mu.Unlock()
	if ok {
		return f
	}
	uc := s.config()
	if uc == nil || uc.route == nil {
		s.p.metrics.udp("", "", "no_route")
		return nil
	}
	b := uc.backends.pick()
	if b == nil {
		s.p.metrics.udp(uc.label, "", "no_backend")
		return nil
	}
	addr := b.next()
	if addr == "" {
		s.p.metrics.udp(uc.label, b.name, "no_endpoints")
		return nil
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		s.p.metrics.udp(uc.label, b.name, "dial_failed")
		return nil
	}
	up, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		s.p.metrics.udp(uc.label, b.name, "dial_failed")
		s.p.log.Debug("udp dial failed", "route", uc.label, "backend", b.name, "endpoint", addr, "error", err)
		return nil
	}
	f = &udpFlow{client: client, up: up, route: uc.label, backend: b.name, idle: orDefault(uc.idle, orDefault(s.p.opts.UDPIdleTimeout, defaultUDPIdleTimeout))}
	f.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		up.Close()
		return nil
	}
	s.flows[client] = f
	s.mu.Unlock()
	s.p.metrics.udp(uc.label, b.name, "flow_started")
	go s.replies(f)
	return f
}

// replies sends the endpoint's datagrams back to the client until the flow is idle for its
// timeout (or the port closes).
func (s *udpServer) replies(f *udpFlow) {
	defer func() {
		s.mu.Lock()
		if s.flows[f.client] == f {
			delete(s.flows, f.client)
		}
		s.mu.Unlock()
		f.up.Close()
	}()
	buf := make([]byte, maxDatagram)
	for {
		deadline := time.Unix(0, f.last.Load()).Add(f.idle)
		if !time.Now().Before(deadline) {
			s.p.metrics.udp(f.route, f.backend, "flow_expired")
			return
		}
		f.up.SetReadDeadline(deadline)
		n, err := f.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // the loop decides whether the flow is idle
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED (ICMP port unreachable) and the like: the endpoint may come back;
			// keep the flow until it is idle.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := s.conn.WriteToUDPAddrPort(buf[:n], f.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.p.metrics.udp(f.route, f.backend, "reply_failed")
			continue
		}
		s.p.metrics.udp(f.route, f.backend, "replied")
	}
}

// close stops reading the port and ends every flow.
func (s *udpServer) close() {
	s.mu.Lock()
	s.closed = true
	flows := s.flows
	s.flows = map[netip.AddrPort]*udpFlow{}
	s.mu.Unlock()
	s.conn.Close()
	for _, f := range flows {
		f.up.Close()
	}
}

// Flows is the number of live UDP flows on a port; tests use it.
func (p *Proxy) UDPFlows(port int32) int {
	p.mu.Lock()
	ps, ok := p.servers[port]
	p.mu.Unlock()
	if !ok || ps.udp == nil {
		return 0
	}
	ps.udp.mu.Lock()
	defer ps.udp.mu.Unlock()
	return len(ps.udp.flows)
}

// udpMetrics counts UDP datagrams and flows by route, backend and result.
type udpMetrics struct{ m sync.Map } // tcpKey -> *atomic.Uint64

func (m *Metrics) udp(route, backend, result string) {
	inc(&m.udpEvents.m, tcpKey{route, backend, result})
}

// UDP returns the count of UDP events with the given labels (results: flow_started,
// flow_expired, forwarded, replied, send_failed, reply_failed, no_route, no_backend,
// no_endpoints, dial_failed); tests use it.
func (m *Metrics) UDP(route, backend, result string) uint64 {
	if v, ok := m.udpEvents.m.Load(tcpKey{route, backend, result}); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}
