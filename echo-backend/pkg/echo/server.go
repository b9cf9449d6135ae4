package echo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/connid"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

// Options configure a Server. The zero value serves plaintext HTTP/1.1 and h2c, keeps no
// records and logs nothing.
type Options struct {
	Identity identity.Identity
	// Records receives one record per request; nil keeps none.
	Records *records.Store
	// RequestLog receives the stable one-line-per-request log; nil discards it.
	RequestLog io.Writer
	// TLS, when set, makes the server speak TLS (HTTP/1.1 and h2 by ALPN) instead of h2c.
	TLS *tls.Config
	// Logger reports server errors; nil discards them.
	Logger *slog.Logger
	// ResponseDelay delays every answer (after the record is kept), on top of any ?delay=.
	// With ResponseStatus it makes a slow, failing backend, e.g. a mirror that must not slow
	// the primary, without the client's request asking for it.
	ResponseDelay time.Duration
	// ResponseStatus, when non-zero, is the status of every answer that does not ask for one
	// with /status/NNN.
	ResponseStatus int
}

// maxUpgradeBody caps the body of an h2c Upgrade request, which must be read into memory
// before the connection switches protocols.
const maxUpgradeBody = 1 << 20

// Server serves the echo on listeners. Create it with NewServer.
type Server struct {
	hs       *http.Server
	h2       *http2.Server
	tls      bool
	handler  http.Handler
	ids      connid.Source
	upgraded sync.WaitGroup
	mu       sync.Mutex
	upConns  map[net.Conn]struct{}
}

// NewServer returns a Server for opts.
func NewServer(opts Options) (*Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		handler: &handler{id: opts.Identity, records: opts.Records, log: &lineWriter{w: opts.RequestLog}, delay: opts.ResponseDelay, status: opts.ResponseStatus},
		h2:      &http2.Server{},
		upConns: make(map[net.Conn]struct{}),
		tls:     opts.TLS != nil,
	}
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return connid.WithID(ctx, s.ids.Next())
		},
	}
	s.hs.Protocols = new(http.Protocols)
	s.hs.Protocols.SetHTTP1(true)
	if opts.TLS != nil {
		s.hs.TLSConfig = opts.TLS.Clone()
		s.hs.Protocols.SetHTTP2(true)
	} else {
		s.hs.Protocols.SetUnencryptedHTTP2(true)
	}
	// Route every HTTP/2 connection (TLS h2, h2c prior knowledge, and our h2c upgrades) through
	// one x/net http2.Server so that Shutdown sends all of them GOAWAY.
	if err := http2.ConfigureServer(s.hs, s.h2); err != nil {
		return nil, fmt.Errorf("configure http2 server: %w", err)
	}
	return s, nil
}

// Handler returns the echo handler alone (no h2c upgrade), for use in other servers.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on ln until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.tls {
		err = s.hs.ServeTLS(ln, "", "")
	} else {
		err = s.hs.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, sends HTTP/2 connections GOAWAY, waits for in-flight requests
// (h2c-upgraded connections included) and returns; when ctx ends first it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.upgraded.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.upConns {
			_ = c.Close()
		}
		s.mu.Unlock()
		<-done
		err = errors.Join(err, fmt.Errorf("drain h2c-upgraded connections: %w", ctx.Err()))
	}
	return err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.TLS == nil && isH2CUpgrade(r.Header) {
		s.upgradeH2C(w, r)
		return
	}
	s.handler.ServeHTTP(w, r)
}

// isH2CUpgrade reports an RFC 7540 section 3.2 upgrade request.
func isH2CUpgrade(h http.Header) bool {
	return httpguts.HeaderValuesContainsToken(h["Upgrade"], "h2c") &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "HTTP2-Settings")
}

// upgradeH2C switches the connection to HTTP/2 and serves the upgrade request as stream 1.
// net/http serves h2c with prior knowledge but not the Upgrade dance, hence this.
func (s *Server) upgradeH2C(w http.ResponseWriter, r *http.Request) {
	vals := r.Header["Http2-Settings"]
	if len(vals) != 1 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("h2c upgrade: header HTTP2-Settings: got %d values; want 1", len(vals)))
		return
	}
	settings, err := base64.RawURLEncoding.DecodeString(vals[0])
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("h2c upgrade: header HTTP2-Settings: %w", err))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpgradeBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("h2c upgrade: read body: %w", err))
		return
	}
	if len(body) > maxUpgradeBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("h2c upgrade: body over %d bytes", maxUpgradeBody))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("h2c upgrade: hijack: %w", err))
		return
	}
	s.upgraded.Add(1)
	defer s.upgraded.Done()
	s.mu.Lock()
	s.upConns[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.upConns, conn)
		s.mu.Unlock()
		_ = conn.Close()
	}()
	if _, err := rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
		return
	}
	if err := rw.Flush(); err != nil {
		return
	}
	var nc net.Conn = conn
	if rw.Reader.Buffered() > 0 {
		nc = &bufferedConn{Conn: conn, r: rw.Reader}
	}
	s.h2.ServeConn(nc, &http2.ServeConnOpts{
		Context:        r.Context(),
		BaseConfig:     s.hs,
		Handler:        s.handler,
		UpgradeRequest: r,
		Settings:       settings,
	})
}

// bufferedConn reads what the HTTP/1 reader already buffered (the client's HTTP/2 preface)
// before reading the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if n := c.r.Buffered(); n > 0 {
			return c.r.Read(p[:min(len(p), n)])
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}
