package gwtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/gatecheck/gatecheck/internal/wait"
)

// Port-forward timings.
const (
	// reforwardTimeout bounds finding a ready Pod again after the forwarded one went away.
	reforwardTimeout = ConvergeTimeout
	// podPollEvery is how often a forward checks that its Pod still serves: a rollout
	// replaces the proxy Pod, and connections must move to the new one.
	podPollEvery = time.Second
	// failCooldown is how long after failing to find a Pod new connections fail at once.
	failCooldown = 5 * time.Second
	// dialTimeout bounds opening the port-forward connection through the API server.
	dialTimeout = 30 * time.Second
)

// forwarder serves a stable loopback address and forwards each accepted connection to a
// Pod port over the API server's portforward subresource, as kubectl port-forward does. It
// differs from client-go's PortForwarder in what a long suite needs: the Pod is re-resolved
// when it goes away (a restarted proxy), and a failure to reach the Pod's port resets the
// local connection (RST) instead of closing every forwarded connection, so a client can tell
// "the forward failed" (reset) from "the server closed" (EOF).
type forwarder struct {
	what    string // what is forwarded, for messages: "Gateway ns/name listener 80"
	out     io.Writer
	ln      net.Listener
	target  func(ctx context.Context) (podTarget, error)
	dial    func(ctx context.Context, t podTarget) (httpstream.Connection, error)
	serving func(ctx context.Context, t podTarget) (string, error)
	poll    time.Duration
	// retarget bounds the wait for a Pod to forward to; default reforwardTimeout.
	retarget time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	reqID  atomic.Int64

	mu  sync.Mutex
	cur *fwdSession
	// failed and failedAt remember the last failure to find a Pod: connections waiting
	// behind it fail at once instead of each waiting out its own retarget timeout.
	failed   error
	failedAt time.Time

	logMu    sync.Mutex
	lastLog  string
	lastAt   time.Time
	repeated int
}

// fwdSession is one port-forward connection to one Pod.
type fwdSession struct {
	t      podTarget
	conn   httpstream.Connection
	nudge  chan struct{}
	once   sync.Once
	closed chan struct{}
}

func (s *fwdSession) close() {
	s.once.Do(func() {
		close(s.closed)
		_ = s.conn.Close()
	})
}

func (s *fwdSession) isClosed() bool {
	select {
	case <-s.closed:
		return true
	case <-s.conn.CloseChan():
		return true
	default:
		return false
	}
}

// startForward listens on 127.0.0.1:0 and connects to the first target before returning, so
// that a Gateway without a reachable Pod fails the setup instead of the first request.
func startForward(ctx context.Context, f *forwarder) error {
	if f.poll <= 0 {
		f.poll = podPollEvery
	}
	if f.retarget <= 0 {
		f.retarget = reforwardTimeout
	}
	if f.out == nil {
		f.out = io.Discard
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for port-forward to %s: %w", f.what, err)
	}
	f.ln = ln
	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if _, err := f.session(ctx); err != nil {
		f.Close()
		return err
	}
	f.wg.Add(1)
	go f.accept()
	return nil
}

// Addr is the loopback host:port that forwards.
func (f *forwarder) Addr() string { return f.ln.Addr().String() }

// Close stops accepting, closes the port-forward connection and waits briefly for the
// connections in flight to end.
func (f *forwarder) Close() {
	f.cancel()
	_ = f.ln.Close()
	f.mu.Lock()
	if f.cur != nil {
		f.cur.close()
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		fmt.Fprintf(f.out, "port-forward to %s: connections still open 5s after close; leaving them\n", f.what)
	}
}

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(f.out, "port-forward to %s: accept on %s: %v\n", f.what, f.ln.Addr(), err)
			}
			return
		}
		f.wg.Add(1)
		go f.handle(c)
	}
}

// session returns the live port-forward connection, opening one to a freshly resolved Pod
// when there is none (first use, or the Pod went away).
func (f *forwarder) session(ctx context.Context) (*fwdSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.cur; s != nil && !s.isClosed() {
		return s, nil
	}
	f.cur = nil
	if f.failed != nil && time.Since(f.failedAt) < failCooldown {
		return nil, f.failed
	}
	var s *fwdSession
	_, err := wait.For(ctx, "a ready Pod to port-forward "+f.what+" to", f.retarget, wait.Options{Interval: 500 * time.Millisecond, Out: f.out},
		func(ctx context.Context) (bool, string, error) {
			t, err := f.target(ctx)
			if err != nil {
				return false, err.Error(), nil
			}
			c, err := f.dial(ctx, t)
			if err != nil {
				return false, fmt.Sprintf("port-forward to %s: %v", t, err), nil
			}
			s = &fwdSession{t: t, conn: c, nudge: make(chan struct{}, 1), closed: make(chan struct{})}
			return true, "", nil
		})
	if err != nil {
		f.failed, f.failedAt = fmt.Errorf("port-forward to %s: %w", f.what, err), time.Now()
		return nil, f.failed
	}
	f.cur, f.failed = s, nil
	if to := s.t.String(); to != f.what {
		fmt.Fprintf(f.out, "port-forward %s -> %s: %s\n", f.ln.Addr(), f.what, to)
	} else {
		fmt.Fprintf(f.out, "port-forward %s -> %s\n", f.ln.Addr(), to)
	}
	f.wg.Add(1)
	go f.watch(s)
	return s, nil
}

// watch drops the session when its connection closes or its Pod stops serving, so that the
// next connection goes to a Pod that serves.
func (f *forwarder) watch(s *fwdSession) {
	defer f.wg.Done()
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-s.closed:
			return
		case <-s.conn.CloseChan():
			f.drop(s, "the port-forward connection to "+s.t.String()+" closed")
			return
		case <-tick.C:
		case <-s.nudge:
		}
		why, err := f.serving(f.ctx, s.t)
		if err != nil {
			continue // the API server hiccuped; the Pod may well be fine
		}
		if why != "" {
			f.drop(s, why)
			return
		}
	}
}

func (f *forwarder) drop(s *fwdSession, why string) {
	s.close()
	f.mu.Lock()
	if f.cur == s {
		f.cur = nil
	}
	f.mu.Unlock()
	if f.ctx.Err() == nil {
		fmt.Fprintf(f.out, "port-forward to %s: %s; new connections go to a ready Pod found again\n", f.what, why)
	}
}

// handle forwards one local connection. Opening the streams is retried once on a new
// session: nothing was read from the client yet, so a Pod that just went away costs the
// client nothing.
func (f *forwarder) handle(c net.Conn) {
	defer f.wg.Done()
	var (
		s            *fwdSession
		errStr, data httpstream.Stream
		headers      http.Header
		err          error
	)
	for attempt := 0; attempt < 2; attempt++ {
		s, err = f.session(f.ctx)
		if err != nil {
			f.logf("%v", err)
			reset(c)
			return
		}
		headers = http.Header{}
		headers.Set(corev1.StreamType, corev1.StreamTypeError)
		headers.Set(corev1.PortHeader, strconv.Itoa(int(s.t.Port)))
		headers.Set(corev1.PortForwardRequestIDHeader, strconv.FormatInt(f.reqID.Add(1), 10))
		if errStr, err = s.conn.CreateStream(headers); err != nil {
			f.drop(s, fmt.Sprintf("create error stream to %s: %v", s.t, err))
			continue
		}
		_ = errStr.Close() // nothing is written to it
		headers.Set(corev1.StreamType, corev1.StreamTypeData)
		if data, err = s.conn.CreateStream(headers); err != nil {
			s.conn.RemoveStreams(errStr)
			f.drop(s, fmt.Sprintf("create data stream to %s: %v", s.t, err))
			continue
		}
		break
	}
	if err != nil {
		f.logf("port-forward to %s: %v", f.what, err)
		reset(c)
		return
	}
	defer s.conn.RemoveStreams(errStr, data)

	errc := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errStr)
		switch {
		case err != nil:
			errc <- fmt.Errorf("read the error stream: %w", err)
		case len(msg) > 0:
			errc <- errors.New(string(msg))
		default:
			errc <- nil
		}
	}()
	remoteDone, localFailed := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = io.Copy(c, data)
		close(remoteDone)
	}()
	go func() {
		defer data.Close() // half-close: the client sent everything
		if _, err := io.Copy(data, c); err != nil && !isClosedConn(err) {
			close(localFailed)
		}
	}()
	select {
	case <-remoteDone:
	case <-localFailed:
	}
	// Reset before waiting on the error stream: unsent data could otherwise block it.
	_ = data.Reset()
	if err := <-errc; err != nil {
		f.logf("port-forward to %s via %s: %v", f.what, s.t, err)
		select {
		case s.nudge <- struct{}{}:
		default:
		}
		reset(c)
		return
	}
	_ = c.Close()
}

// reset closes c with a TCP RST, which a client reads as "connection reset" rather than a
// clean end of stream.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(strings.ToLower(err.Error()), "use of closed network connection")
}

// logf prints a forwarding problem, folding repeats of the same message within 5 s into a
// count so a broken Pod under load does not flood the log.
func (f *forwarder) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.logMu.Lock()
	defer f.logMu.Unlock()
	if msg == f.lastLog && time.Since(f.lastAt) < 5*time.Second {
		f.repeated++
		return
	}
	if f.repeated > 0 {
		fmt.Fprintf(f.out, "  (previous message repeated %d more times)\n", f.repeated)
	}
	f.lastLog, f.lastAt, f.repeated = msg, time.Now(), 0
	fmt.Fprintln(f.out, msg)
}

// podDialer opens port-forward connections to Pods through the API server: websocket
// tunnelling first, SPDY when the server does not upgrade (what kubectl does).
type podDialer struct {
	rest      *rest.Config
	transport http.RoundTripper
	upgrader  spdy.Upgrader
	// url builds the portforward subresource URL of a Pod.
	url func(ns, pod string) *url.URL
}

func newPodDialer(cfg *rest.Config, kube kubernetes.Interface) (*podDialer, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("SPDY transport for %s: %w", cfg.Host, err)
	}
	return &podDialer{rest: cfg, transport: transport, upgrader: upgrader, url: func(ns, pod string) *url.URL {
		return kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	}}, nil
}

func (d *podDialer) dial(ctx context.Context, t podTarget) (httpstream.Connection, error) {
	u := d.url(t.Namespace, t.Pod)
	spdyDialer := spdy.NewDialer(d.upgrader, &http.Client{Transport: d.transport}, http.MethodPost, u)
	tunnel, err := portforward.NewSPDYOverWebsocketDialer(u, d.rest)
	if err != nil {
		return nil, fmt.Errorf("websocket dialer for %s: %w", t, err)
	}
	dialer := portforward.NewFallbackDialer(tunnel, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	type result struct {
		c   httpstream.Connection
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, proto, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
		if err == nil && proto != portforward.PortForwardProtocolV1Name {
			_ = c.Close()
			c, err = nil, fmt.Errorf("server negotiated protocol %q; want %q", proto, portforward.PortForwardProtocolV1Name)
		}
		done <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
		go func() { // the dial has no context: close its connection if it ever arrives
			if r := <-done; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, fmt.Errorf("port-forward dial to %s: %w", t, ctx.Err())
	}
}
