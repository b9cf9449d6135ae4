package proxy

import (
	"bytes"
	"net"
	"strconv"
	"strings"
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
// does not follow — HTTP/2 prior knowledge, Upgrade/CONNECT, an unknown transfer coding, a
// malformed length, an oversized head — it stops inspecting and passes bytes through, leaving
// the server's own (strict) parser to decide.

// rejectHead replaces a refused request head: an unparsable request line, which the server
// answers with 400 Bad Request before closing the connection.
var rejectHead = []byte("REJECTED-CONFLICTING-CONTENT-LENGTH-AND-TRANSFER-ENCODING\r\n\r\n")

const maxTrackedHead = 1 << 20

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
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
	state   framingState
	remain  int64  // bytes left in a Content-Length body or chunk (+CRLF)
	line    []byte // head, chunk-size line or trailer line being accumulated
	pending []byte // inspected bytes not yet returned to the server
	buf     [4096]byte
}

// CloseWrite lets the server half-close, as it does on a bare *net.TCPConn.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framingConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.state == stPass && len(c.line) == 0 {
			return c.Conn.Read(p)
		}
		n, err := c.Conn.Read(c.buf[:])
		if n > 0 {
			c.feed(c.buf[:n])
		}
		if err != nil {
			if len(c.pending) == 0 {
				// Give the server what was held back, then the error.
				c.pending, c.line = append(c.pending, c.line...), nil
				if len(c.pending) == 0 {
					return 0, err
				}
			}
			break
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return n, nil
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
				if len(c.line) > maxTrackedHead {
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
				if len(c.line) > 64<<10 {
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
	var cl, te []string
	upgrade := false
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			cl = append(cl, value)
		case "transfer-encoding":
			te = append(te, value)
		case "upgrade":
			upgrade = true
		}
	}
	if len(cl) > 0 && len(te) > 0 {
		c.pending = append(c.pending, rejectHead...)
		c.state = stPass
		return
	}
	c.pending = append(c.pending, h...)
	switch {
	case upgrade:
		// After a 101 the connection no longer carries HTTP/1 messages.
		c.state = stPass
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
