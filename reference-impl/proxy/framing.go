package proxy

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Go's HTTP/1 server follows RFC 9112 6.3 for a request carrying both Transfer-Encoding and
// Content-Length: Transfer-Encoding wins and Content-Length is dropped before the handler runs,
// so the handler cannot tell. Such a request is the classic smuggling probe, and the data plane
// must refuse it with a 4xx. framingListener tracks HTTP/1 message framing on cleartext (and,
// through tlsserve.go, on HTTP/1 over TLS)
// connections and turns such a request head into one the server rejects with 400 (and closes
// the connection), so it never reaches a route or a backend.
//
// The tracker only reads framing (heads, Content-Length bodies, chunked bodies). On anything it
// does not follow — HTTP/2 prior knowledge, CONNECT, a 101 answer to an Upgrade, an unknown
// transfer coding, a malformed length, a head or chunk line over net/http's own limit — it
// stops inspecting and passes bytes through, leaving the server's own (strict) parser to
// decide. Its limits are the server's plus one byte, so whatever it gives up on the server
// refuses too.

// rejectHead replaces a refused request head: an unparsable request line, which the server
// answers with 400 Bad Request before closing the connection.
var rejectHead = []byte("REJECTED-CONFLICTING-CONTENT-LENGTH-AND-TRANSFER-ENCODING\r\n\r\n")

// maxChunkLine is net/http's limit on a chunk-size line (internal.maxLineLength).
const maxChunkLine = 4096

// headLimit is how much request head net/http's server reads before answering 431: the
// server's MaxHeaderBytes (default http.DefaultMaxHeaderBytes) plus 4096 bytes of slack
// (http.Server.initialReadLimitSize).
func headLimit(maxHeaderBytes int) int {
	return orDefault(maxHeaderBytes, http.DefaultMaxHeaderBytes) + 4096
}

// framingListener wraps each accepted connection in a framingConn.
type framingListener struct {
	net.Listener
	maxHeaderBytes int // the server's MaxHeaderBytes
}

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingConn(c, l.maxHeaderBytes), nil
}

func newFramingConn(c net.Conn, maxHeaderBytes int) *framingConn {
	return &framingConn{Conn: c, maxHead: headLimit(maxHeaderBytes)}
}

type framingState int

const (
	stHead framingState = iota
	stBody
	stChunkSize
	stChunkData
	stChunkCRLF
	stTrailer
	stPass
)

type framingConn struct {
	net.Conn
	maxHead int // longest head to track; see headLimit

	// mu guards the tracker's state: Read runs on the server's reading goroutine, Write
	// (which watches for a 101) on a handler's.
	mu      sync.Mutex
	state   framingState
	remain  int64  // bytes left in a Content-Length body or chunk (+CRLF)
	line    []byte // head, chunk-size line or trailer line being accumulated
	pending []byte // inspected bytes not yet returned to the server
	// upgrading is set from an Upgrade request head until its final response is written:
	// a 101 switches the connection to another protocol, anything else keeps it HTTP/1.
	upgrading atomic.Bool
	buf       [4096]byte // used by Read only
}

// CloseWrite lets the server half-close, as it does on a bare *net.TCPConn.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	for len(c.pending) == 0 {
		if c.state == stPass && len(c.line) == 0 {
			// Nothing ever leaves stPass: reading without the lock is safe.
			c.mu.Unlock()
			return c.Conn.Read(p)
		}
		c.mu.Unlock()
		n, err := c.Conn.Read(c.buf[:])
		c.mu.Lock()
		if n > 0 {
			c.feed(c.buf[:n])
		}
		if err != nil {
			if len(c.pending) > 0 {
				break // the error comes again on the next Read
			}
			// A type assertion, not errors.As: this runs for every request (net/http
			// aborts its background read with a deadline) and must not allocate.
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				// A deadline is not the end of the connection: net/http expires one on
				// purpose to stop a background read, then goes on reading. A partial head
				// stays held and the state stays as it is.
				c.mu.Unlock()
				return 0, err
			}
			// The connection is over: give the server what was held back, then the error.
			c.pending, c.line = append(c.pending, c.line...), nil
			if len(c.pending) == 0 {
				c.mu.Unlock()
				return 0, err
			}
			break
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	c.mu.Unlock()
	return n, nil
}

// Write watches, after an Upgrade request, for the status line of its answer: from a 101 on
// the connection carries another protocol and is passed through uninspected.
func (c *framingConn) Write(b []byte) (int, error) {
	if c.upgrading.Load() {
		c.sawResponse(b)
	}
	return c.Conn.Write(b)
}

func (c *framingConn) sawResponse(b []byte) {
	// net/http writes each response head from its start ("HTTP/1.1 101 ..."), and flushes
	// 1xx heads separately; a write not starting with a status line continues a response.
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("HTTP/1.")) || b[8] != ' ' {
		return
	}
	code := string(b[9:12])
	switch {
	case code == "101":
		c.mu.Lock()
		c.pass(nil)
		c.mu.Unlock()
		c.upgrading.Store(false)
	case code[0] == '1':
		// 100 Continue, 103 Early Hints: the final answer is still to come.
	default:
		c.upgrading.Store(false)
	}
}

// pass stops inspection; held bytes and the rest go through unchanged.
func (c *framingConn) pass(rest []byte) {
	c.pending = append(append(c.pending, c.line...), rest...)
	c.line = nil
	c.state = stPass
}

func (c *framingConn) feed(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case stPass:
			c.pending = append(c.pending, b...)
			return
		case stBody, stChunkData, stChunkCRLF:
			n := min(int64(len(b)), c.remain)
			c.pending = append(c.pending, b[:n]...)
			b, c.remain = b[n:], c.remain-n
			if c.remain == 0 {
				switch c.state {
				case stBody:
					c.state = stHead
				case stChunkData:
					c.state, c.remain = stChunkCRLF, 2
				case stChunkCRLF:
					c.state = stChunkSize
				}
			}
		case stHead:
			// Empty lines before a request line are allowed (RFC 9112 2.2).
			if len(c.line) == 0 && (b[0] == '\r' || b[0] == '\n') {
				c.pending = append(c.pending, b[0])
				b = b[1:]
				continue
			}
			from := max(0, len(c.line)-3)
			c.line = append(c.line, b...)
			end := headEnd(c.line, from)
			if end < 0 {
				if len(c.line) > c.maxHead {
					c.pass(nil)
				}
				return
			}
			head, rest := c.line[:end], c.line[end:]
			c.line = nil
			c.head(head)
			b = append([]byte(nil), rest...)
		case stChunkSize, stTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				if len(c.line) > maxChunkLine {
					c.pass(nil)
				}
				return
			}
			line := append(c.line, b[:i+1]...)
			c.line = nil
			b = b[i+1:]
			c.pending = append(c.pending, line...)
			text := strings.TrimRight(string(line), "\r\n")
			if c.state == stTrailer {
				if text == "" {
					c.state = stHead
				}
				continue
			}
			sizeText, _, _ := strings.Cut(text, ";")
			size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
			if err != nil || size < 0 {
				c.pass(b)
				return
			}
			if size == 0 {
				c.state = stTrailer
			} else {
				c.state, c.remain = stChunkData, size
			}
		}
	}
}

// headEnd returns the index just past the blank line ending a head, or -1.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// head inspects one complete request head and decides how the body that follows is framed.
func (c *framingConn) head(h []byte) {
	lines := strings.Split(strings.ReplaceAll(string(h), "\r\n", "\n"), "\n")
	if strings.HasPrefix(lines[0], "PRI * HTTP/2.0") || strings.HasPrefix(lines[0], "CONNECT ") {
		c.pass(h)
		return
	}
	// Fields as net/http's textproto reads them: a line starting with a space or a tab
	// (obs-fold) continues the previous field's value.
	var cl, te []string
	upgrade := false
	var cont *string // the value an obs-fold line continues, when it is one we keep
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			if cont != nil {
				*cont = strings.TrimSpace(*cont + " " + strings.TrimSpace(l))
			}
			continue
		}
		cont = nil
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "content-length"):
			cl = append(cl, value)
			cont = &cl[len(cl)-1]
		case strings.EqualFold(name, "transfer-encoding"):
			te = append(te, value)
			cont = &te[len(te)-1]
		case strings.EqualFold(name, "upgrade"):
			upgrade = true
		}
	}
	if len(cl) > 0 && len(te) > 0 {
		c.pending = append(c.pending, rejectHead...)
		c.state = stPass
		return
	}
	c.pending = append(c.pending, h...)
	c.state = stHead
	if upgrade {
		// Only a 101 ends HTTP/1 on this connection (Write watches for it); an Upgrade
		// the backend declines leaves the next request to be inspected like any other.
		c.upgrading.Store(true)
	}
	switch {
	case len(te) > 0:
		codings := strings.Split(strings.Join(te, ","), ",")
		if strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") {
			c.state = stChunkSize
		} else {
			c.state = stPass
		}
	case len(cl) > 0:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		switch {
		case err != nil || n < 0:
			c.state = stPass
		case n > 0:
			c.state, c.remain = stBody, n
		}
	}
}
