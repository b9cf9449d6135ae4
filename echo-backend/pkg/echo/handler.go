package echo

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/connid"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

// Request-shaping inputs, named like echo-basic's where echo-basic has them.
const (
	// SetHeaderHeader carries "Name: value" pairs (comma-separated, repeatable) that the echo
	// sets on its response, exactly like echo-basic.
	SetHeaderHeader = "X-Echo-Set-Header"
	// RequestIDHeader and RequestIDQuery carry the request id; the header wins.
	RequestIDHeader = "X-Request-Id"
	RequestIDQuery  = "request-id"
	// ConformanceRequestIDQuery is the id upstream conformance adds to every request path.
	ConformanceRequestIDQuery = "gateway-api-conformance-request-id"
	// DelayQuery makes the echo wait (a Go duration, e.g. ?delay=250ms) before answering.
	DelayQuery = "delay"
)

// handler answers /health, /status/NNN and echoes everything else.
type handler struct {
	id      identity.Identity
	records *records.Store
	log     *lineWriter
	delay   time.Duration // Options.ResponseDelay
	status  int           // Options.ResponseStatus
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		_, _ = w.Write([]byte("OK"))
		return
	}
	received := time.Now()
	q := r.URL.Query()
	resp := &Response{
		Path:         r.RequestURI,
		Host:         r.Host,
		Method:       r.Method,
		Proto:        r.Proto,
		Headers:      r.Header,
		HTTPPort:     localPort(r),
		Identity:     h.id,
		TLS:          NewTLSInfo(r.TLS),
		RequestID:    requestID(r, q),
		ConnectionID: connid.FromContext(r.Context()),
		ReceivedAt:   received,
		RemoteAddr:   r.RemoteAddr,
	}
	if resp.Path == "" { // requests built in-process (and h2 upgrades) may lack RequestURI
		resp.Path = r.URL.RequestURI()
	}
	resp.Seq = h.records.Add(records.Record{
		ID:           resp.RequestID,
		Kind:         records.KindHTTP,
		Method:       r.Method,
		Path:         r.URL.Path,
		URI:          resp.Path,
		Host:         r.Host,
		Proto:        r.Proto,
		Headers:      r.Header.Clone(),
		Time:         received,
		ConnectionID: resp.ConnectionID,
		RemoteAddr:   r.RemoteAddr,
	})
	h.log.write(AppendLogLine(make([]byte, 0, 256), LogFields{
		URI: resp.Path, RemoteAddr: resp.RemoteAddr, RequestID: resp.RequestID, ConnectionID: resp.ConnectionID,
		Seq: resp.Seq, Method: resp.Method, Proto: resp.Proto, Host: resp.Host, Backend: resp.Backend,
	}))

	n, err := io.Copy(io.Discard, r.Body)
	resp.BodyLength = n
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}

	code := http.StatusOK
	if h.status != 0 {
		code = h.status
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		c, err := strconv.Atoi(rest)
		if err != nil || len(rest) != 3 || c < 200 || c > 599 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("path %q: want /status/NNN with NNN in 200-599", r.URL.Path))
			return
		}
		code = c
	}
	delay := h.delay
	if d := q.Get(DelayQuery); d != "" {
		qd, err := time.ParseDuration(d)
		if err != nil || qd < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("query parameter %s=%q: want a non-negative Go duration such as 250ms", DelayQuery, d))
			return
		}
		delay += qd
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	body, err := json.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("encode echo: %w", err))
		return
	}
	setResponseHeaders(w, r.Header)
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	hdr["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	if code != http.StatusNoContent && code != http.StatusNotModified && r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func requestID(r *http.Request, q map[string][]string) string {
	if v := r.Header.Get(RequestIDHeader); v != "" {
		return v
	}
	if v := q[RequestIDQuery]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	if v := q[ConformanceRequestIDQuery]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return strconv.Itoa(a.Port)
	}
	return ""
}

// setResponseHeaders mirrors echo-basic's writeEchoResponseHeaders, casing preserved.
func setResponseHeaders(w http.ResponseWriter, h http.Header) {
	for _, list := range h[SetHeaderHeader] {
		for kv := range strings.SplitSeq(list, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(kv), ":")
			if len(w.Header()[name]) == 0 {
				w.Header()[name] = []string{value}
			} else {
				w.Header()[name][0] += "," + strings.TrimSpace(value)
			}
		}
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{err.Error()})
}
