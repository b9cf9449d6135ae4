// Package tcpecho is the TCP mode of echo-backend: on each connection it writes one JSON
// greeting line naming the backend and the connection, then echoes bytes until the client
// half-closes, and half-closes in turn.
package tcpecho

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/connid"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

// Greeting is the first line the server writes on every connection (JSON, then "\n").
type Greeting struct {
	identity.Identity
	ConnectionID string    `json:"connectionId"`
	RemoteAddr   string    `json:"remoteAddr"`
	AcceptedAt   time.Time `json:"acceptedAt"`
	// Seq is the connection's record number on the admin API (0 when records are off).
	Seq uint64 `json:"seq,omitempty"`
}

// ReadGreeting reads and decodes the greeting line from r; keep using r afterwards, since it
// may have buffered echoed bytes.
func ReadGreeting(r *bufio.Reader) (Greeting, error) {
	var g Greeting
	line, err := r.ReadBytes('\n')
	if err != nil {
		return g, fmt.Errorf("read tcp echo greeting: %w", err)
	}
	if err := json.Unmarshal(line, &g); err != nil {
		return g, fmt.Errorf("decode tcp echo greeting %q: %w", line, err)
	}
	return g, nil
}

// Options configure a Server.
type Options struct {
	Identity identity.Identity
	Records  *records.Store
	// RequestLog receives one line per accepted connection; nil discards it.
	RequestLog io.Writer
	Logger     *slog.Logger
}

// Server echoes on listeners. The zero value is not usable; call NewServer.
type Server struct {
	opts   Options
	logger *slog.Logger
	ids    connid.Source
	logMu  sync.Mutex

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[net.Conn]struct{}
	shutdown bool
	wg       sync.WaitGroup
}

// NewServer returns a Server for opts.
func NewServer(opts Options) *Server {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, logger: logger, lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
}

// ErrServerClosed is returned by Serve after Shutdown was called before it.
var ErrServerClosed = errors.New("tcp echo server closed")

// Serve accepts connections on ln until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.shutdown
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			_ = c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Shutdown stops accepting and waits for open connections to finish; when ctx ends first it
// closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	var errs []error
	for ln := range s.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		<-done
		errs = append(errs, fmt.Errorf("drain %d tcp connections: %w", n, ctx.Err()))
	}
	return errors.Join(errs...)
}

func (s *Server) handle(c net.Conn) {
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	g := Greeting{
		Identity:     s.opts.Identity,
		ConnectionID: s.ids.Next(),
		RemoteAddr:   c.RemoteAddr().String(),
		AcceptedAt:   time.Now(),
	}
	g.Seq = s.opts.Records.Add(records.Record{
		Kind: records.KindTCP, Path: "", Time: g.AcceptedAt, ConnectionID: g.ConnectionID, RemoteAddr: g.RemoteAddr,
	})
	if s.opts.RequestLog != nil {
		s.logMu.Lock()
		fmt.Fprintf(s.opts.RequestLog, "Accepted tcp connection from client (%s) connection_id=%s seq=%d backend=%q\n", g.RemoteAddr, g.ConnectionID, g.Seq, g.Backend)
		s.logMu.Unlock()
	}
	line, err := json.Marshal(g)
	if err != nil {
		s.logger.Error("encode tcp greeting", "connection", g.ConnectionID, "err", err)
		return
	}
	if _, err := c.Write(append(line, '\n')); err != nil {
		s.logger.Debug("write tcp greeting", "connection", g.ConnectionID, "err", err)
		return
	}
	// io.Copy on *net.TCPConn uses splice where it can.
	if _, err := io.Copy(c, c); err != nil && !errors.Is(err, net.ErrClosed) {
		s.logger.Debug("tcp echo", "connection", g.ConnectionID, "err", err)
		return
	}
	// The client half-closed: everything is echoed, so half-close our side too.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
