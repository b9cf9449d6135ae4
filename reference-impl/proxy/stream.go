package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// TLS listeners (TLSRoute). In Passthrough mode the proxy reads the client's ClientHello
// without answering it, takes its SNI, picks the listener (by listener hostname) and the
// TLSRoute (by route hostname, most specific first, then oldest), picks a backend by weight per
// connection, replays the ClientHello bytes to it and splices the rest both ways: the TLS
// session is between the client and the backend. In Terminate mode the proxy completes the
// handshake itself with the listener's certificates (chosen as for HTTPS) and splices the
// plaintext stream to the backend. Listeners of both modes may share a port: the SNI picks
// the listener, the listener's mode what happens next.

// clientHelloTimeout bounds the wait for a ClientHello.
const clientHelloTimeout = 10 * time.Second

// streamConfig is a TLS port's listeners.
type streamConfig struct {
	listeners *hostTable[*tlsListenerConfig]
}

type tlsListenerConfig struct {
	name   string
	mode   ir.TLSMode
	certs  []tls.Certificate // Terminate mode
	routes *hostTable[*tlsRouteConfig]
}

type tlsRouteConfig struct {
	route    *routeInfo
	label    string
	backends backendSet
}

// compileStream compiles a UDP or TLS listener into its port's configuration.
func compileStream(pc *portConfig, l *ir.Listener, lcfg *listenerConfig) error {
	if l.Protocol == ir.ProtocolUDP {
		var err error
		pc.udp, err = compileUDP(l)
		return err
	}
	if pc.tls == nil {
		pc.tls = &streamConfig{listeners: newHostTable[*tlsListenerConfig]()}
	}
	lc := &tlsListenerConfig{name: l.Name, mode: l.TLSMode, routes: newHostTable[*tlsRouteConfig]()}
	if lc.mode == "" {
		lc.mode = ir.TLSPassthrough
	}
	if lc.mode == ir.TLSTerminate {
		if len(lcfg.certs) == 0 {
			return fmt.Errorf("tls mode Terminate needs a certificate")
		}
		lc.certs = lcfg.certs
	}
	for _, r := range l.TLSRoutes {
		ri := &routeInfo{meta: r.RouteMeta, key: r.Namespace + "/" + r.Name}
		bs, err := compileBackends(r.Backends, false)
		if err != nil {
			return fmt.Errorf("tlsroute %s: %w", ri.key, err)
		}
		rc := &tlsRouteConfig{route: ri, label: ri.key, backends: bs}
		hosts := r.Hostnames
		if len(hosts) == 0 {
			hosts = []string{l.Hostname}
		}
		for _, h := range hosts {
			lc.routes.add(h, rc)
		}
	}
	lc.routes.sort(func(a, b *tlsRouteConfig) bool { return routeTieLess(a.route, b.route, 0, 0, 0, 0) })
	pc.tls.listeners.add(l.Hostname, lc)
	return nil
}

// streamServer serves a TLS port; it accepts and tracks connections through tcpServer.
type streamServer struct {
	tcp *tcpServer
}

func (s *streamServer) serve() {
	var delay time.Duration
	for {
		c, err := s.tcp.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.tcp.p.log.Warn("tls accept failed", "port", s.tcp.port, "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.handle(c)
	}
}

// errHelloRead stops the handshake once the ClientHello has been read.
var errHelloRead = errors.New("client hello read")

// recordingConn lets crypto/tls read a ClientHello from the client while keeping every byte
// read, and never writes: the client hears nothing from the proxy.
type recordingConn struct {
	net.Conn
	r   io.Reader
	buf *bytes.Buffer
}

func (c recordingConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c recordingConn) Write(b []byte) (int, error) { return 0, io.ErrClosedPipe }

// peekClientHello reads the client's ClientHello and returns its SNI and the bytes read.
func peekClientHello(c net.Conn) (string, []byte, error) {
	var buf bytes.Buffer
	var sni string
	var hello bool
	rc := recordingConn{Conn: c, r: io.TeeReader(c, &buf), buf: &buf}
	err := tls.Server(rc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni, hello = h.ServerName, true
		return nil, errHelloRead
	}}).Handshake()
	if !hello {
		return "", buf.Bytes(), fmt.Errorf("no TLS ClientHello: %w", err)
	}
	return sni, buf.Bytes(), nil
}

func (s *streamServer) handle(client net.Conn) {
	p := s.tcp.p
	defer client.Close()
	client.SetReadDeadline(time.Now().Add(clientHelloTimeout))
	sni, hello, err := peekClientHello(client)
	if err != nil {
		p.metrics.tlsConn("", "", "no_client_hello")
		p.log.Debug("tls listener: no ClientHello", "port", s.tcp.port, "error", err)
		return
	}
	client.SetReadDeadline(time.Time{})
	var sc *streamConfig
	if c := p.cur.Load(); c != nil {
		if pc := c.ports[s.tcp.port]; pc != nil {
			sc = pc.tls
		}
	}
	host := normalizeHost(sni)
	if sc == nil {
		p.metrics.tlsConn("", "", "no_route")
		return
	}
	lc, ok := sc.listeners.first(host)
	if !ok {
		p.metrics.tlsConn("", "", "no_listener")
		return
	}
	rc, ok := lc.routes.first(host)
	if !ok {
		p.metrics.tlsConn("", "", "no_route")
		return
	}
	b := rc.backends.pick()
	if b == nil {
		p.metrics.tlsConn(rc.label, "", "no_backend")
		return
	}
	addr := b.next()
	if addr == "" {
		p.metrics.tlsConn(rc.label, b.name, "no_endpoints")
		return
	}
	var down net.Conn = client
	if lc.mode == ir.TLSTerminate {
		tc := tls.Server(replayConn{Conn: client, r: io.MultiReader(bytes.NewReader(hello), client)}, &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
				for i := range lc.certs {
					if h.SupportsCertificate(&lc.certs[i]) == nil {
						return &lc.certs[i], nil
					}
				}
				return &lc.certs[0], nil
			},
		})
		client.SetDeadline(time.Now().Add(clientHelloTimeout))
		if err := tc.Handshake(); err != nil {
			p.metrics.tlsConn(rc.label, b.name, "handshake_failed")
			p.log.Debug("tls terminate handshake failed", "route", rc.label, "error", err)
			return
		}
		client.SetDeadline(time.Time{})
		down, hello = tc, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.dialer.Timeout)
	up, err := p.dialer.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		p.metrics.tlsConn(rc.label, b.name, "dial_failed")
		p.log.Debug("tls dial failed", "route", rc.label, "backend", b.name, "endpoint", addr, "error", err)
		return
	}
	defer up.Close()
	if len(hello) > 0 {
		if _, err := up.Write(hello); err != nil {
			p.metrics.tlsConn(rc.label, b.name, "dial_failed")
			return
		}
	}
	if !s.tcp.track(client, true) {
		return
	}
	defer s.tcp.track(client, false)
	p.metrics.tlsConn(rc.label, b.name, "connected")
	o := p.opts
	if pipe(down, up, orDefault(o.TCPIdleTimeout, time.Hour), orDefault(o.TCPHalfCloseTimeout, time.Minute)) {
		p.metrics.tlsConn(rc.label, b.name, "closed_idle")
	}
}

// replayConn reads the bytes already taken from the client first (the ClientHello), then the
// client.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (m *Metrics) tlsConn(route, backend, result string) {
	inc(&m.tlsConns.m, tcpKey{route, backend, result})
}

// TLS returns the count of TLS listener connections with the given labels (results:
// connected, closed_idle, no_client_hello, no_listener, no_route, no_backend, no_endpoints,
// dial_failed); tests use it.
func (m *Metrics) TLS(route, backend, result string) uint64 {
	if v, ok := m.tlsConns.m.Load(tcpKey{route, backend, result}); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}
