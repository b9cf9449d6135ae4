// Package forwardproxy is echo-backend's forward-proxy mode: a plain httputil.ReverseProxy to
// one upstream that stands in for a mesh sidecar proxy in the sidecar suite, so the suite needs
// no implementation's proxy. It writes lifecycle events (package lifecycle's format) when it
// starts, listens and exits, which the suite's timelines read.
package forwardproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
)

// Options configure a Server.
type Options struct {
	// Upstream receives every request: its scheme and host, its path prefixed to the request's.
	Upstream *url.URL
	// Container names the proxy in its events; empty: "proxy".
	Container string
	// Events receives one lifecycle event line per write; nil: no events.
	Events io.Writer
	// Transport carries the upstream requests; nil: a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives upstream errors; nil: discarded.
	Logger *slog.Logger
}

func (o Options) container() string {
	if o.Container == "" {
		return "proxy"
	}
	return o.Container
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) transport() http.RoundTripper {
	if o.Transport == nil {
		return http.DefaultTransport.(*http.Transport).Clone()
	}
	return o.Transport
}

// Server is the proxy. Serve and Shutdown make it one of echo-backend's serving modes.
type Server struct {
	o   Options
	srv *http.Server
	mu  sync.Mutex // one write per event line
}

// New returns a proxy to o.Upstream and emits "starting": the proxy's process has begun.
func New(o Options) (*Server, error) {
	if o.Upstream == nil || o.Upstream.Scheme == "" || o.Upstream.Host == "" {
		return nil, fmt.Errorf("forward proxy: upstream %v: want an absolute URL like http://10.0.0.7:8080", o.Upstream)
	}
	s := &Server{o: o}
	rp := httputil.NewSingleHostReverseProxy(o.Upstream)
	rp.Transport = o.transport()
	log := o.logger()
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Warn("upstream request failed", "upstream", o.Upstream.String(), "path", r.URL.Path, "err", err)
		w.WriteHeader(http.StatusBadGateway)
	}
	s.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	s.emit(lifecycle.EventStarting, "pid", strconv.Itoa(os.Getpid()), "upstream", o.Upstream.String())
	return s, nil
}

// Serve emits "started" (the proxy accepts connections on ln) and serves until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.emit(lifecycle.EventStarted, "addr", ln.Addr().String())
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains in-flight requests, then emits "exiting".
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	code := "0"
	if err != nil {
		code = "1"
	}
	s.emit(lifecycle.EventExiting, "code", code, "reason", lifecycle.ReasonSIGTERM)
	return err
}

// emit writes one event; kv alternates keys and values.
func (s *Server) emit(name string, kv ...string) {
	if s.o.Events == nil {
		return
	}
	e := lifecycle.Event{Time: time.Now(), Container: s.o.container(), Name: name, Fields: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Fields[kv[i]] = kv[i+1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.o.Events, e.String()+"\n")
}
