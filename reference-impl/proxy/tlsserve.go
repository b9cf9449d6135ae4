package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
)

// HTTPS ports cannot use http.Server.ServeTLS: the framing tracker (framing.go) must read the
// plaintext, i.e. sit between TLS and net/http's HTTP/1 parser, and ServeTLS offers no place
// for it. So an HTTPS port's socket is a tlsListener that runs the handshakes itself and hands
// finished connections to the port's ordinary http.Server (which still owns serving, idle
// timeouts and graceful Shutdown):
//   - "h2" connections go as the bare *tls.Conn. net/http dispatches them by ALPN to its
//     bundled HTTP/2 server exactly as under ServeTLS; HTTP/2 frames carry their own lengths
//     and that server answers a Transfer-Encoding header with 400 itself.
//   - everything else goes as a framingConn over the *tls.Conn that also reports
//     ConnectionState, which is how net/http fills Request.TLS for a conn that is not a
//     *tls.Conn (handler.go needs it for the 421 check and the forwarded scheme).

// tlsHandshakeTimeout bounds a handshake, so a client that connects and stays silent does not
// hold a goroutine and a socket forever (ServeTLS had no such bound without a ReadTimeout).
const tlsHandshakeTimeout = 10 * time.Second

// tlsListener is an HTTPS port's TCP socket yielding handshaken connections.
type tlsListener struct {
	net.Listener   // the TCP socket; Addr is its address
	config         *tls.Config
	maxHeaderBytes int // the server's, for the framing tracker's limit
	log            *slog.Logger
	conns          chan net.Conn
	ctx            context.Context // canceled by Close; aborts handshakes in progress
	cancel         context.CancelFunc
}

func newTLSListener(ln net.Listener, config *tls.Config, maxHeaderBytes int, log *slog.Logger) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{Listener: ln, config: config, maxHeaderBytes: maxHeaderBytes, log: log, conns: make(chan net.Conn), ctx: ctx, cancel: cancel}
}

// Accept returns the next handshaken connection, or net.ErrClosed once the listener closed.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		if l.ctx.Err() != nil {
			c.Close()
			return nil, net.ErrClosed
		}
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close closes the socket and aborts handshakes in progress; the server drains the rest.
func (l *tlsListener) Close() error {
	l.cancel()
	return l.Listener.Close()
}

// run accepts TCP connections until the socket is closed, handshaking each in its own
// goroutine so a slow client cannot stall the others.
func (l *tlsListener) run() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				l.cancel()
				return
			}
			// Out of file descriptors and the like: back off and retry, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Warn("https accept failed; retrying", "address", l.Addr().String(), "retry_in", delay, "error", err)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	ctx, cancel := context.WithTimeout(l.ctx, tlsHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// Like net/http: a plaintext HTTP request on the HTTPS port gets a readable 400.
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && recordLooksLikeHTTP(re.RecordHeader) {
			re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		c.Close()
		l.log.Debug("tls handshake failed", "remote", c.RemoteAddr().String(), "error", err)
		return
	}
	var hc net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		hc = &tlsFramingConn{framingConn: newFramingConn(tc, l.maxHeaderBytes), tls: tc}
	}
	select {
	case l.conns <- hc:
	case <-l.ctx.Done():
		c.Close()
	}
}

// tlsFramingConn is an HTTP/1 connection over TLS with the framing tracker in front of
// net/http's parser.
type tlsFramingConn struct {
	*framingConn
	tls *tls.Conn
}

// ConnectionState makes net/http set Request.TLS, as it does for a *tls.Conn.
func (c *tlsFramingConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// recordLooksLikeHTTP reports whether the first bytes of a failed handshake were plaintext
// HTTP (the same test net/http applies).
func recordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}
