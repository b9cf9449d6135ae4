// Package udpecho is the UDP mode of echo-backend: every datagram gets one datagram back, a
// JSON Answer naming the backend and carrying the request's flow and sequence number, so a
// client can tell per flow which backend served it, which datagrams were lost and which came
// back out of order.
//
// A request datagram is "GCU1 <flow> <seq>" optionally followed by a space and padding; any
// other datagram is answered too, with Seq -1 and the first 64 bytes in Raw.
package udpecho

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
)

// RequestPrefix starts every request datagram of the gatecheck UDP protocol.
const RequestPrefix = "GCU1 "

// Answer is the datagram the server sends back (JSON).
type Answer struct {
	identity.Identity
	// Flow and Seq are copied from the request; Seq is -1 for a datagram not in the protocol.
	Flow string `json:"flow,omitempty"`
	Seq  int64  `json:"seq"`
	// RemoteAddr is the address the datagram came from (the proxy's flow socket).
	RemoteAddr string `json:"remoteAddr"`
	// Received counts the datagrams this server got from RemoteAddr so far, this one included.
	Received uint64 `json:"received"`
	Raw      string `json:"raw,omitempty"`
}

// Request formats a request datagram, padded with spaces to at least size bytes.
func Request(flow string, seq int64, size int) []byte {
	b := []byte(RequestPrefix + flow + " " + strconv.FormatInt(seq, 10))
	if len(b) < size {
		b = append(b, ' ')
		for len(b) < size {
			b = append(b, '.')
		}
	}
	return b
}

// ParseAnswer decodes an answer datagram.
func ParseAnswer(b []byte) (Answer, error) {
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("decode udp echo answer %q: %w", truncate(b), err)
	}
	return a, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func parseRequest(b []byte) (flow string, seq int64, ok bool) {
	s, found := strings.CutPrefix(string(b), RequestPrefix)
	if !found {
		return "", -1, false
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return "", -1, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 {
		return "", -1, false
	}
	return f[0], n, true
}

// Options configure a Server.
type Options struct {
	Identity identity.Identity
	// RequestLog receives one line per new remote address; nil discards it.
	RequestLog io.Writer
	Logger     *slog.Logger
}

// Server answers datagrams. The zero value is not usable; call NewServer.
type Server struct {
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	conns    map[net.PacketConn]struct{}
	counts   map[string]uint64
	shutdown bool
}

// NewServer returns a Server for opts.
func NewServer(opts Options) *Server {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, logger: logger, conns: map[net.PacketConn]struct{}{}, counts: map[string]uint64{}}
}

// Listener adapts a PacketConn to the net.Listener that echo-backend's servers are handed; only
// Serve uses it (Accept blocks until Close).
type Listener struct {
	net.PacketConn
	closed chan struct{}
	once   sync.Once
}

// NewListener wraps pc.
func NewListener(pc net.PacketConn) *Listener {
	return &Listener{PacketConn: pc, closed: make(chan struct{})}
}

func (l *Listener) Accept() (net.Conn, error) { <-l.closed; return nil, net.ErrClosed }
func (l *Listener) Addr() net.Addr            { return l.LocalAddr() }
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.PacketConn.Close()
}

// ErrServerClosed is returned by Serve after Shutdown was called before it.
var ErrServerClosed = errors.New("udp echo server closed")

// Serve answers datagrams on ln (a *Listener) until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	l, ok := ln.(*Listener)
	if !ok {
		return fmt.Errorf("udp echo: Serve needs a *udpecho.Listener, got %T", ln)
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.conns[l] = struct{}{}
	s.mu.Unlock()
	buf := make([]byte, 65535)
	for {
		n, from, err := l.ReadFrom(buf)
		if err != nil {
			s.mu.Lock()
			closing := s.shutdown
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("read on %s: %w", l.LocalAddr(), err)
		}
		out, err := s.answer(buf[:n], from.String())
		if err != nil {
			s.logger.Error("encode udp answer", "err", err)
			continue
		}
		if _, err := l.WriteTo(out, from); err != nil {
			s.logger.Debug("udp answer", "to", from.String(), "err", err)
		}
	}
}

func (s *Server) answer(req []byte, from string) ([]byte, error) {
	a := Answer{Identity: s.opts.Identity, RemoteAddr: from}
	var ok bool
	a.Flow, a.Seq, ok = parseRequest(req)
	if !ok {
		a.Raw = truncate(req)
	}
	s.mu.Lock()
	s.counts[from]++
	a.Received = s.counts[from]
	if len(s.counts) > 100000 {
		s.counts = map[string]uint64{from: a.Received} // bounded memory; counts restart
	}
	s.mu.Unlock()
	if a.Received == 1 && s.opts.RequestLog != nil {
		fmt.Fprintf(s.opts.RequestLog, "New udp flow from client (%s) flow=%q backend=%q\n", from, a.Flow, a.Backend)
	}
	return json.Marshal(a)
}

// Shutdown stops serving at once: UDP has nothing in flight to drain.
func (s *Server) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	var errs []error
	for c := range s.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
