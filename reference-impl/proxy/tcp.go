package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
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
	o := s.p.opts
	if pipe(client, up, orDefault(o.TCPIdleTimeout, time.Hour), orDefault(o.TCPHalfCloseTimeout, time.Minute)) {
		s.p.metrics.tcp(tc.label, b.name, "closed_idle")
	}
}

// pipe copies both ways until both directions are done, or no byte moved either way for
// idle, or, once one direction has finished, none moved the other way for halfClose; it
// reports whether a timeout ended it. io.Copy between *net.TCPConn uses splice(2) on
// Linux, also through the io.LimitedReader used here; as it reports bytes only when it
// returns, activity is known at the end of a chunk or a deadline, so a timeout closes a
// connection between one and two timeouts after its last byte. When one side finishes sending, the
// other side's write half is closed (half-close) so request/response protocols that signal
// the end with FIN keep working.
func pipe(a, b net.Conn, idle, halfClose time.Duration) (timedOut bool) {
	st := &pipeState{idle: idle, halfClose: halfClose}
	st.last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	var timedOutA bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		timedOutA = st.copyHalf(b, a)
	}()
	timedOutB := st.copyHalf(a, b)
	wg.Wait()
	return timedOutA || timedOutB
}

type pipeState struct {
	idle, halfClose time.Duration
	last            atomic.Int64 // UnixNano of the last bytes moved either way
	halfClosedAt    atomic.Int64 // UnixNano when the first direction finished; 0 before
}

// chunk is how much one io.Copy moves before the activity time is updated.
const chunk = 256 << 10

// copyHalf copies src to dst, then closes dst's write half, or all of both on an error or a
// timeout so the other direction cannot hang. Only read deadlines are set: a read that
// times out has moved nothing (a write timing out inside splice could drop bytes).
func (st *pipeState) copyHalf(dst, src net.Conn) (timedOut bool) {
	for {
		limit := st.idle
		hc := st.halfClosedAt.Load()
		if hc != 0 {
			limit = st.halfClose
		}
		deadline := time.Unix(0, st.last.Load()).Add(limit)
		if !time.Now().Before(deadline) {
			dst.Close()
			src.Close()
			return true
		}
		src.SetReadDeadline(deadline)
		if hc == 0 && st.halfClosedAt.Load() != 0 {
			continue // the other direction just finished: take the half-close timeout
		}
		n, err := io.Copy(dst, &io.LimitedReader{R: src, N: chunk})
		if n > 0 {
			st.last.Store(time.Now().UnixNano())
		}
		var ne net.Error
		switch {
		case err == nil && n == chunk:
			continue
		case err == nil: // EOF
			if st.halfClosedAt.CompareAndSwap(0, time.Now().UnixNano()) {
				// The other direction reads dst: its deadline becomes the half-close one.
				dst.SetReadDeadline(time.Unix(0, st.last.Load()).Add(st.halfClose))
			}
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			} else {
				dst.Close()
			}
			return false
		case errors.As(err, &ne) && ne.Timeout():
			continue // the loop decides whether the connection is idle
		default:
			dst.Close()
			src.Close()
			return false
		}
	}
}

func (s *tcpServer) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.ln.Close()
}

// closeConns ends every forwarded connection: at a full proxy shutdown, and when a removed
// listener's drain timeout is over.
func (s *tcpServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
