package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Options configure a Proxy. Zero values mean the documented defaults.
type Options struct {
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// BindAddress is the address listeners bind to; "" means all interfaces.
	BindAddress string
	// DialTimeout bounds connecting to a backend endpoint; default 5 s.
	DialTimeout time.Duration
	// MirrorTimeout bounds one mirrored request; default 10 s.
	MirrorTimeout time.Duration
	// MirrorConcurrency is how many mirrored requests may be in flight per mirror backend;
	// more are dropped and counted. Default 256.
	MirrorConcurrency int
	// MirrorMaxBody is the largest request body copied to mirrors; a request with a larger
	// body is not mirrored (counted as dropped). Default 1 MiB.
	MirrorMaxBody int64
	// MirrorBudget bounds the request body bytes held for mirror copies in flight, summed
	// over requests and mirror backends; a copy beyond it is dropped (counted as
	// dropped_budget). Default 64 MiB.
	MirrorBudget int64
	// DrainTimeout bounds how long a removed listener's in-flight requests and TCP
	// connections may take; default 30 s. Then they are closed.
	DrainTimeout time.Duration
	// TCPIdleTimeout closes a TCP route's connection when no byte moved either way for
	// this long; default 1 h (Envoy's tcp_proxy idle_timeout).
	TCPIdleTimeout time.Duration
	// TCPHalfCloseTimeout closes a TCP route's connection when one side has finished
	// sending and no byte moved the other way for this long; default 1 min.
	TCPHalfCloseTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow after this long without a datagram either way, unless its
	// listener sets its own; default 60 s (Envoy's udp_proxy idle_timeout).
	UDPIdleTimeout time.Duration
	// StdHTTP1Upstream sends every HTTP/1.1 request through net/http's Transport, turning off
	// the same-goroutine fast path for body-less requests (for comparison or as an escape hatch).
	StdHTTP1Upstream bool
	// StdHTTP1Server serves cleartext HTTP/1.1 with net/http's server only, turning off
	// h1Server's fast path for plain GET and HEAD requests (for comparison or as an escape
	// hatch).
	StdHTTP1Server bool
	// MaxHeaderBytes bounds a request's header block; larger gets 431. Default 64 KiB.
	MaxHeaderBytes int
	// MaxResponseHeaderBytes bounds an HTTP/1 backend's response head; larger gets the
	// client a 502. Default 1 MiB (net/http's Transport would allow 10 MiB).
	MaxResponseHeaderBytes int64
	// ResponseHeaderTimeout bounds the wait for an HTTP/1 backend's response head once the
	// request is written; the client gets a 502. Default 60 s (nginx's proxy_read_timeout).
	// A route with a timeout of its own is bounded by that instead, longer or shorter. Not
	// applied to h2c backends, where a gRPC stream may legitimately send its headers late.
	ResponseHeaderTimeout time.Duration
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func orDefault[T int | int64 | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Proxy serves the listeners of one Gateway snapshot at a time.
type Proxy struct {
	opts    Options
	log     *slog.Logger
	cur     atomic.Pointer[compiled]
	metrics *Metrics
	rp      *httputil.ReverseProxy
	up      *upstreams
	mirror  *mirrorer
	dialer  *net.Dialer
	// clientCert is the backend client certificate of the snapshot in force (backendtls.go).
	clientCert atomic.Pointer[clientCert]

	mu      sync.Mutex // serializes ApplyUpdate and Close; guards servers and routes
	servers map[int32]*portServer
	closed  bool
	// routes is the configuration in force keyed by route, with its compiled forms (update.go).
	routes *routes
}

// New returns a Proxy serving nothing until the first Apply.
func New(opts Options) *Proxy {
	p := &Proxy{
		opts:    opts,
		log:     opts.logger(),
		metrics: newMetrics(),
		servers: map[int32]*portServer{},
		dialer:  &net.Dialer{Timeout: orDefault(opts.DialTimeout, 5*time.Second), KeepAlive: 30 * time.Second},
	}
	maxResHeader := orDefault(opts.MaxResponseHeaderBytes, defaultMaxResponseHeaderBytes)
	resHeaderTimeout := orDefault(opts.ResponseHeaderTimeout, 60*time.Second)
	p.up = newUpstreams(p.dialer, 0, maxResHeader, resHeaderTimeout, &p.clientCert)
	if !opts.StdHTTP1Upstream {
		p.up.fast = &h1Fast{dial: p.dialer.DialContext, maxIdle: 256, idleTimeout: 60 * time.Second,
			maxHeaderBytes: maxResHeader, headerTimeout: resHeaderTimeout}
	}
	p.mirror = &mirrorer{
		limit:   orDefault(opts.MirrorConcurrency, 256),
		timeout: orDefault(opts.MirrorTimeout, 10*time.Second),
		maxBody: orDefault(opts.MirrorMaxBody, 1<<20),
		budget:  orDefault(opts.MirrorBudget, 64<<20),
		up:      newUpstreams(p.dialer, 64, maxResHeader, resHeaderTimeout, &p.clientCert),
		metrics: p.metrics,
		log:     p.log,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        rewriteUpstream,
		Transport:      p.up,
		ModifyResponse: modifyResponse,
		ErrorHandler:   p.proxyError,
		ErrorLog:       log.New(slogWriter{p.log}, "", 0),
		BufferPool:     bufferPool{},
		// FlushInterval 0 already flushes streaming (unknown-length) responses such as gRPC
		// immediately; buffered bodies of known length are written as they come.
	}
	return p
}

// Metrics returns the proxy's metrics.
func (p *Proxy) Metrics() *Metrics { return p.metrics }

// Ready reports whether a snapshot has been applied.
func (p *Proxy) Ready() bool { return p.cur.Load() != nil }

// Version returns the applied snapshot version, or -1 before the first.
func (p *Proxy) Version() int64 {
	if c := p.cur.Load(); c != nil {
		return c.version
	}
	return -1
}

// Config returns the configuration in force as a snapshot, nil before the first update (for
// tests and debugging).
func (p *Proxy) Config() *ir.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.routes == nil {
		return nil
	}
	return delta.Snapshot(p.routes.table)
}

// portServer is one bound socket and what serves it.
type portServer struct {
	port     int32
	protocol ir.Protocol
	ln       net.Listener
	http     *http.Server
	h1       *h1Server // cleartext HTTP: the fast path in front of http
	tcp      *tcpServer
	udp      *udpServer    // UDP listeners (udp.go)
	stream   *streamServer // TLS listeners (stream.go)
	closing  atomic.Bool   // set before the socket is closed on purpose
}

// Apply validates s and makes it the served configuration: ApplyUpdate with s as the full
// state. Ports whose protocol did not change keep their socket and connections; new ports are
// opened before the swap, removed ones are closed after it and drain in the background. On
// error the previous configuration stays in force.
func (p *Proxy) Apply(s *ir.Snapshot) error {
	if s == nil {
		p.metrics.configRejected.Add(1)
		return s.Validate()
	}
	return p.ApplyUpdate(delta.Full(delta.FromSnapshot(s)))
}

// ApplyUpdate applies one update of the delivery stream (ir/delivery.go): the full state, or a
// delta on the version in force (else an error wrapping delta.ErrWrongBase: the caller must
// get the full state). It validates what the update changed and compiles only the routes it
// upserts and the listeners they attach to (update.go); the swap is as for Apply.
func (p *Proxy) ApplyUpdate(u *ir.Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy is closed")
	}
	if p.routes != nil && u.Gateway != p.routes.table.Gateway {
		p.metrics.configRejected.Add(1)
		return fmt.Errorf("update version %d: gateway %s, but this proxy serves %s", u.Version, u.Gateway, p.routes.table.Gateway)
	}
	next, c, err := prepare(p.routes, u)
	if err != nil {
		p.metrics.configRejected.Add(1)
		return err
	}
	s := &next.table.Head
	cert := p.clientCert.Load()
	if !cert.same(s.BackendClientCertificate) {
		if cert, err = parseClientCert(s.BackendClientCertificate); err != nil {
			p.metrics.configRejected.Add(1)
			return fmt.Errorf("update version %d: %w", u.Version, err)
		}
	}
	// Open new ports first so a bind failure leaves everything as it was.
	opened := map[int32]*portServer{}
	for port, pc := range c.ports {
		if _, ok := p.servers[port]; ok {
			continue
		}
		ps, err := p.listen(pc)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			p.metrics.configRejected.Add(1)
			return fmt.Errorf("update version %d: %w", u.Version, err)
		}
		opened[port] = ps
	}
	var errs []error
	// A port whose protocol changed must be closed before it can be bound again.
	for port, pc := range c.ports {
		old, ok := p.servers[port]
		if !ok || old.protocol == pc.protocol {
			continue
		}
		p.shutdown(old)
		delete(p.servers, port)
		ps, err := p.listen(pc)
		if err != nil {
			errs = append(errs, fmt.Errorf("update version %d: %w", u.Version, err))
			continue
		}
		opened[port] = ps
	}
	p.cur.Store(c)
	p.routes = next
	p.clientCert.Store(cert)
	p.up.tls.prune(tlsUnusedAfter)
	p.mirror.up.tls.prune(tlsUnusedAfter)
	for port, ps := range opened {
		p.servers[port] = ps
		p.serve(ps)
	}
	for port, ps := range p.servers {
		if _, ok := c.ports[port]; !ok {
			p.shutdown(ps)
			delete(p.servers, port)
		}
	}
	p.metrics.configVersion.Store(c.version)
	p.metrics.configApplied.Add(1)
	p.log.Info("applied update", "gateway", c.gateway.String(), "version", c.version, "base", u.BaseVersion, "ports", len(c.ports))
	return errors.Join(errs...)
}

func (p *Proxy) listen(pc *portConfig) (*portServer, error) {
	if pc.protocol == ir.ProtocolUDP {
		return p.listenUDP(pc)
	}
	addr := net.JoinHostPort(p.opts.BindAddress, strconv.Itoa(int(pc.port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for %s port %d: %w", addr, pc.protocol, pc.port, err)
	}
	ps := &portServer{port: pc.port, protocol: pc.protocol, ln: ln}
	switch pc.protocol {
	case ir.ProtocolTCP:
		ps.tcp = &tcpServer{p: p, port: pc.port, ln: ln, conns: map[net.Conn]struct{}{}}
	case ir.ProtocolTLS:
		ps.tcp = &tcpServer{p: p, port: pc.port, ln: ln, conns: map[net.Conn]struct{}{}}
		ps.stream = &streamServer{tcp: ps.tcp}
	default:
		port := pc.port
		srv := &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serveHTTP(port, w, r) }),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    orDefault(p.opts.MaxHeaderBytes, 64<<10),
			ErrorLog:          log.New(slogWriter{p.log}, "", 0),
			Protocols:         new(http.Protocols),
		}
		srv.Protocols.SetHTTP1(true)
		if pc.protocol == ir.ProtocolHTTPS {
			// The listener handshakes (tlsserve.go); srv.TLSConfig stays nil so that Serve
			// sets up HTTP/2 for the "h2" connections it is handed.
			srv.Protocols.SetHTTP2(true)
			base := &tls.Config{
				MinVersion:     tls.VersionTLS12,
				NextProtos:     []string{"h2", "http/1.1"},
				GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return p.certificate(port, hello) },
			}
			// Client certificate validation, per snapshot (frontendtls.go).
			base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return p.handshakeConfig(port, base) }
			ps.ln = newTLSListener(ln, base, srv.MaxHeaderBytes, p.log)
		} else {
			// h2c with prior knowledge, for gRPC and HTTP/2 clients without TLS.
			srv.Protocols.SetUnencryptedHTTP2(true)
			if !p.opts.StdHTTP1Server {
				ps.h1 = newH1Server(p, port, ln, srv.MaxHeaderBytes)
			}
		}
		ps.http = srv
	}
	return ps, nil
}

func (p *Proxy) serve(ps *portServer) {
	p.log.Info("serving listener port", "port", ps.port, "protocol", ps.protocol, "address", ps.ln.Addr().String())
	switch {
	case ps.udp != nil:
		go ps.udp.serve()
	case ps.stream != nil:
		go ps.stream.serve()
	case ps.tcp != nil:
		go ps.tcp.serve()
	case ps.protocol == ir.ProtocolHTTPS:
		go ps.ln.(*tlsListener).run()
		go func() {
			if err := ps.http.Serve(ps.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !ps.closing.Load() {
				p.log.Error("https listener stopped", "port", ps.port, "error", err)
			}
		}()
	case ps.h1 != nil:
		go func() {
			if err := ps.h1.serve(); err != nil && !ps.closing.Load() {
				p.log.Error("http listener stopped", "port", ps.port, "error", err)
			}
		}()
		// The connections h1Server hands over, already wrapped for the framing tracker.
		go ps.http.Serve(ps.h1.handoff)
	default:
		go func() {
			if err := ps.http.Serve(framingListener{Listener: ps.ln, maxHeaderBytes: ps.http.MaxHeaderBytes}); err != nil && !errors.Is(err, http.ErrServerClosed) && !ps.closing.Load() {
				p.log.Error("http listener stopped", "port", ps.port, "error", err)
			}
		}()
	}
}

// shutdown closes ps's socket now and lets its requests drain in the background.
func (p *Proxy) shutdown(ps *portServer) {
	p.log.Info("closing listener port", "port", ps.port, "protocol", ps.protocol)
	ps.closing.Store(true)
	if ps.udp != nil {
		ps.udp.close()
		return
	}
	if ps.tcp != nil {
		ps.tcp.close()
		// Its connections may finish, but no longer than the drain timeout: they go to
		// backends of a listener that no longer exists.
		time.AfterFunc(orDefault(p.opts.DrainTimeout, 30*time.Second), ps.tcp.closeConns)
		return
	}
	ps.ln.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), orDefault(p.opts.DrainTimeout, 30*time.Second))
		defer cancel()
		if err := shutdownHTTP(ctx, ps); err != nil {
			ps.http.Close()
		}
	}()
}

// Close stops every listener, waiting up to ctx for in-flight HTTP requests.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for port, ps := range p.servers {
		if ps.udp != nil {
			ps.udp.close()
		} else if ps.tcp != nil {
			ps.tcp.close()
			ps.tcp.closeConns()
		} else if err := shutdownHTTP(ctx, ps); err != nil {
			ps.http.Close()
			errs = append(errs, fmt.Errorf("shut down port %d: %w", port, err))
		}
		delete(p.servers, port)
	}
	p.up.CloseIdleConnections()
	p.mirror.up.CloseIdleConnections()
	return errors.Join(errs...)
}

// shutdownHTTP shuts an HTTP port's servers down, h1Server's and net/http's at once.
func shutdownHTTP(ctx context.Context, ps *portServer) error {
	if ps.h1 == nil {
		return ps.http.Shutdown(ctx)
	}
	h1err := make(chan error, 1)
	go func() { h1err <- ps.h1.shutdown(ctx) }()
	err := ps.http.Shutdown(ctx)
	return errors.Join(err, <-h1err)
}

// Addr returns the bound address of a port, or nil; tests use it.
func (p *Proxy) Addr(port int32) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps, ok := p.servers[port]; ok {
		return ps.ln.Addr()
	}
	return nil
}

// certificate selects the certificate for a TLS handshake: the listener chosen by SNI (the
// first listener of the port when there is no SNI or no listener matches), then the first of
// its certificates the client supports.
func (p *Proxy) certificate(port int32, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := p.cur.Load()
	if c == nil {
		return nil, errors.New("no configuration applied yet")
	}
	pc := c.ports[port]
	if pc == nil {
		return nil, fmt.Errorf("port %d is no longer configured", port)
	}
	lc := pc.handshakeListener(hello.ServerName)
	if lc == nil || len(lc.certs) == 0 {
		return nil, fmt.Errorf("port %d: no certificate for server name %q", port, hello.ServerName)
	}
	for i := range lc.certs {
		if hello.SupportsCertificate(&lc.certs[i]) == nil {
			return &lc.certs[i], nil
		}
	}
	return &lc.certs[0], nil
}

// handshakeListener is the listener whose certificate a handshake with this SNI presents:
// the listener the SNI selects, or, without SNI or a listener with certificates for it,
// the first listener of the port.
func (pc *portConfig) handshakeListener(serverName string) *listenerConfig {
	lc, ok := pc.listeners.first(normalizeHost(serverName))
	if !ok || len(lc.certs) == 0 {
		return pc.first
	}
	return lc
}

// connListener is the listener a TLS connection belongs to, for the 421 check: the one its
// SNI selects (none when the SNI selects none), or without SNI the one whose certificate
// the handshake presented.
func (pc *portConfig) connListener(serverName string) *listenerConfig {
	if serverName == "" {
		return pc.handshakeListener("")
	}
	lc, _ := pc.listeners.first(normalizeHost(serverName))
	return lc
}

// slogWriter adapts net/http's *log.Logger output (TLS handshake errors, bad requests) to slog
// at debug level: they are the client's problem, not the operator's.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Debug(string(b))
	return len(b), nil
}

// bufferPool recycles the ReverseProxy's 32 KiB copy buffers instead of allocating one per
// request.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
