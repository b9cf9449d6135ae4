package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// tcpServer forwards each accepted connection to one backend endpoint chosen per connection.
type tcpServer struct {
	p    *Proxy
	port int32
	ln   net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (s *tcpServer) serve() {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary errors (EMFILE): back off like net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.p.log.Warn("tcp accept failed", "port", s.port, "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.handle(c)
	}
}

func (s *tcpServer) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed && s.conns == nil {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

func (s *tcpServer) handle(client net.Conn) {
	defer client.Close()
	c := s.p.cur.Load()
	var tc *tcpConfig
	if c != nil {
		if pc := c.ports[s.port]; pc != nil {
			tc = pc.tcp
		}
	}
	if tc == nil {
		s.p.metrics.tcp("", "", "no_route")
		return
	}
	b := tc.backends.pick()
	if b == nil {
		s.p.metrics.tcp(tc.label, "", "no_backend")
		return
	}
	addr := b.next()
	if addr == "" {
		s.p.metrics.tcp(tc.label, b.name, "no_endpoints")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.p.dialer.Timeout)
	up, err := s.p.dialer.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		s.p.metrics.tcp(tc.label, b.name, "dial_failed")
		s.p.log.Debug("tcp dial failed", "route", tc.label, "backend", b.name, "endpoint", addr, "error", err)
		return
	}
	defer up.Close()
	if !s.track(client, true) {
		return
	}
	defer s.track(client, false)
	s.p.metrics.tcp(tc.label, b.name, "connected")
	pipe(client, up)
}

// pipe copies both ways until both directions are done. io.Copy between *net.TCPConn uses
// splice(2) on Linux. When one side finishes sending, the other side's write half is closed
// (half-close) so request/response protocols that signal the end with FIN keep working.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(b, a)
	}()
	copyHalf(a, b)
	wg.Wait()
}

// copyHalf copies src to dst, then closes dst's write half, or all of both on an error so the
// other direction cannot hang.
func copyHalf(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

func (s *tcpServer) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.ln.Close()
}

// closeConns ends every forwarded connection; only a full proxy shutdown does this, a removed
// listener lets its connections finish.
func (s *tcpServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
