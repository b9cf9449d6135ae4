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

// appendLogLine formats the stable per-request line:
//
//	Echoing back request made to <uri> to client (<remote>) request_id=<id> connection_id=<c> seq=<n> method=<m> proto=<p> host=<h> backend=<b>
func appendLogLine(b []byte, resp *Response) []byte {
	b = append(b, LogLinePrefix...)
	b = append(b, resp.Path...)
	b = append(b, " to client ("...)
	b = append(b, resp.RemoteAddr...)
	b = append(b, ") request_id="...)
	b = appendValue(b, resp.RequestID)
	b = append(b, " connection_id="...)
	b = appendValue(b, resp.ConnectionID)
	b = append(b, " seq="...)
	b = strconv.AppendUint(b, resp.Seq, 10)
	b = append(b, " method="...)
	b = appendValue(b, resp.Method)
	b = append(b, " proto="...)
	b = appendValue(b, resp.Proto)
	b = append(b, " host="...)
	b = appendValue(b, resp.Host)
	b = append(b, " backend="...)
	b = appendValue(b, resp.Backend)
	return append(b, '\n')
}
