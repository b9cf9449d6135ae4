package echo

import (
	"io"
	"strconv"
	"strings"
	"sync"
)

// lineWriter writes whole lines with one Write call each, so concurrent requests never
// interleave within a line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) write(b []byte) {
	if l == nil || l.w == nil {
		return
	}
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

// appendValue appends v, quoted when it would otherwise break the key=value syntax.
func appendValue(b []byte, v string) []byte {
	if v == "" || strings.ContainsAny(v, " \"=\t\r\n\\") || !strconv.CanBackquote(v) {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}

// LogLinePrefix starts every request log line. It is upstream echo-basic's wording, so the
// upstream mirror tests' log regexp ("Echoing back request made to <path> to client") matches ours.
const LogLinePrefix = "Echoing back request made to "

// LogFields are the values of one request log line.
type LogFields struct {
	URI, RemoteAddr, RequestID, ConnectionID string
	Seq                                      uint64
	Method, Proto, Host, Backend             string
}

// AppendLogLine appends the stable per-request line (gRPC mode uses it too):
//
//	Echoing back request made to <uri> to client (<remote>) request_id=<id> connection_id=<c> seq=<n> method=<m> proto=<p> host=<h> backend=<b>
//
// Values are quoted (Go syntax) only when empty or when they hold spaces, quotes or '='.
func AppendLogLine(b []byte, f LogFields) []byte {
	b = append(b, LogLinePrefix...)
	b = append(b, f.URI...)
	b = append(b, " to client ("...)
	b = append(b, f.RemoteAddr...)
	b = append(b, ") request_id="...)
	b = appendValue(b, f.RequestID)
	b = append(b, " connection_id="...)
	b = appendValue(b, f.ConnectionID)
	b = append(b, " seq="...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, " method="...)
	b = appendValue(b, f.Method)
	b = append(b, " proto="...)
	b = appendValue(b, f.Proto)
	b = append(b, " host="...)
	b = appendValue(b, f.Host)
	b = append(b, " backend="...)
	b = appendValue(b, f.Backend)
	return append(b, '\n')
}
