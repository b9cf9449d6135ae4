package gwtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
)

// podStandIn is what a kubelet's port-forward handler does for one Pod, on loopback: it
// accepts SPDY connections, pairs each request's error and data streams, connects to the
// "Pod port" (a loopback address) and copies, writing to the error stream when the connect
// fails. It stands in for the API server and kubelet, not for the forwarder under test.
type podStandIn struct {
	t     *testing.T
	ln    net.Listener
	ports map[int32]string // Pod port -> loopback address

	mu    sync.Mutex
	conns []httpstream.Connection
}

func newPodStandIn(t *testing.T, ports map[int32]string) *podStandIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &podStandIn{t: t, ln: ln, ports: ports}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serveConn(c)
		}
	}()
	return p
}

func (p *podStandIn) serveConn(c net.Conn) {
	streams := make(chan httpstream.Stream, 16)
	conn, err := spdy.NewServerConnection(c, func(s httpstream.Stream, _ <-chan struct{}) error { streams <- s; return nil })
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, conn)
	p.mu.Unlock()
	pending := map[string]httpstream.Stream{}
	for {
		select {
		case s := <-streams:
			id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
			other, ok := pending[id]
			if !ok {
				pending[id] = s
				continue
			}
			delete(pending, id)
			errS, data := other, s
			if s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
				errS, data = s, other
			}
			go p.forward(errS, data)
		case <-conn.CloseChan():
			return
		}
	}
}

func (p *podStandIn) forward(errS, data httpstream.Stream) {
	defer errS.Close()
	port, _ := strconv.Atoi(data.Headers().Get(corev1.PortHeader))
	addr, ok := p.ports[int32(port)]
	var c net.Conn
	var err error
	if ok {
		c, err = net.Dial("tcp", addr)
	} else {
		err = fmt.Errorf("no port %d", port)
	}
	if err != nil {
		fmt.Fprintf(errS, "failed to connect to localhost:%d: %v", port, err)
		data.Close()
		return
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(c, data); c.(*net.TCPConn).CloseWrite(); close(done) }()
	_, _ = io.Copy(data, c)
	data.Close()
	<-done
	c.Close()
}

// closeAll drops every port-forward connection, as an API server restart would.
func (p *podStandIn) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *podStandIn) dial(ctx context.Context, _ podTarget) (httpstream.Connection, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	return spdy.NewClientConnection(c)
}

// namedEcho is a TCP server that greets with its name and then echoes.
func namedEcho(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// greet connects through addr, reads the greeting and checks an echo round trip.
func greet(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	if back, err := r.ReadString('\n'); err != nil || back != "ping\n" {
		return "", fmt.Errorf("echo: got %q, %v; want ping", back, err)
	}
	return strings.TrimSpace(name), nil
}

// fleet is the Pods a test forwards to: which one the Service would pick now, and which
// still serve.
type fleet struct {
	mu      sync.Mutex
	pods    map[string]*podStandIn
	current string
	gone    map[string]string
	dials   atomic.Int32
}

func (fl *fleet) target(context.Context) (podTarget, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.current == "" {
		return podTarget{}, errors.New("Service ns/svc port 80: no ready, non-terminating Pod endpoint")
	}
	return podTarget{Namespace: "ns", Pod: fl.current, Port: 80}, nil
}

func (fl *fleet) dial(ctx context.Context, t podTarget) (httpstream.Connection, error) {
	fl.dials.Add(1)
	fl.mu.Lock()
	p := fl.pods[t.Pod]
	fl.mu.Unlock()
	return p.dial(ctx, t)
}

func (fl *fleet) serving(_ context.Context, t podTarget) (string, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.gone[t.Pod], nil
}

func (fl *fleet) set(current string, gone map[string]string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.current, fl.gone = current, gone
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFleet(t *testing.T) (*fleet, *forwarder, *syncBuffer) {
	t.Helper()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	fl := &fleet{pods: map[string]*podStandIn{
		"a": newPodStandIn(t, map[int32]string{80: namedEcho(t, "a"), 81: refused}),
		"b": newPodStandIn(t, map[int32]string{80: namedEcho(t, "b"), 81: refused}),
	}, current: "a"}
	out := &syncBuffer{}
	f := &forwarder{what: "Gateway ns/gw listener 80", out: out, target: fl.target, dial: fl.dial, serving: fl.serving, poll: 20 * time.Millisecond, retarget: 2 * time.Second}
	if err := startForward(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return fl, f, out
}

func TestForwarderFollowsThePod(t *testing.T) {
	t.Parallel()
	fl, f, out := newFleet(t)
	for i := range 5 {
		if got, err := greet(f.Addr()); err != nil || got != "a" {
			t.Fatalf("connection %d: got %q, %v; want a", i, got, err)
		}
	}
	if n := fl.dials.Load(); n != 1 {
		t.Errorf("port-forward dials for 5 connections: got %d; want 1 (one session shared)", n)
	}

	// The proxy Pod is replaced: a terminates, the Service now picks b.
	fl.set("b", map[string]string{"a": "Pod ns/a is terminating"})
	deadline := time.Now().Add(3 * time.Second)
	for {
		got, err := greet(f.Addr())
		if err == nil && got == "b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Pod a terminated: got %q, %v; want b within 3s\nlog:\n%s", got, err, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "Pod ns/a is terminating") {
		t.Errorf("log does not say why the forward moved:\n%s", out)
	}

	// The API server drops the connection: the next connection opens a new session.
	before := fl.dials.Load()
	fl.pods["b"].closeAll()
	deadline = time.Now().Add(3 * time.Second)
	for {
		got, err := greet(f.Addr())
		if err == nil && got == "b" && fl.dials.Load() > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the connection closed: got %q, %v, %d dials; want b over a new session", got, err, fl.dials.Load()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForwarderResetsWhenThePodPortRefuses checks a refused Pod port reaches the client as
// a reset (not a clean EOF, which a server closing would give), that the listener probe
// reports it under port-forward, and that the reason is logged.
func TestForwarderResetsWhenThePodPortRefuses(t *testing.T) {
	t.Parallel()
	refusedPort := 81
	_, f, out := newFleet(t)
	f81 := &forwarder{what: "Gateway ns/gw listener 81", out: out, serving: f.serving, dial: f.dial, poll: time.Hour, retarget: time.Second,
		target: func(ctx context.Context) (podTarget, error) {
			t, err := f.target(ctx)
			t.Port = int32(refusedPort)
			return t, err
		}}
	if err := startForward(context.Background(), f81); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f81.Close)

	// The reset may land while connect is still returning (seen on a loaded machine); that
	// is the same verdict.
	c, err := net.Dial("tcp", f81.Addr())
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read through a forward to a refused port: got %v; want connection reset", err)
	}
	if err := probeListener(context.Background(), ReachPortForward, f81.Addr()); err == nil {
		t.Error("probeListener(port-forward) to a refused Pod port: got nil; want an error")
	}
	if err := probeListener(context.Background(), ReachPortForward, f.Addr()); err != nil {
		t.Errorf("probeListener(port-forward) to a serving Pod port: got %v; want nil", err)
	}
	if !strings.Contains(out.String(), "failed to connect to localhost:81") {
		t.Errorf("log does not carry the kubelet's error:\n%s", out)
	}
}

// TestForwarderNoPod checks a Service without a ready Pod fails the start with the reason
// instead of hanging.
func TestForwarderNoPod(t *testing.T) {
	t.Parallel()
	fl := &fleet{}
	f := &forwarder{what: "Gateway ns/gw listener 80", target: fl.target, dial: fl.dial, serving: fl.serving, retarget: 300 * time.Millisecond}
	err := startForward(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "no ready, non-terminating Pod") || !strings.Contains(err.Error(), "Gateway ns/gw listener 80") {
		t.Fatalf("startForward without a Pod: got %v; want a timeout naming the Gateway listener and the reason", err)
	}
}

// TestForwarderPodGoneForGood checks connections fail with a reset and a logged reason when
// no Pod serves any more, and that connections queued behind a failed search fail at once
// rather than each waiting out the timeout again.
func TestForwarderPodGoneForGood(t *testing.T) {
	t.Parallel()
	fl, f, out := newFleet(t)
	f.mu.Lock()
	f.retarget = time.Second
	f.mu.Unlock()
	fl.set("", map[string]string{"a": "Pod ns/a was deleted"})
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(out.String(), "Pod ns/a was deleted") {
		if time.Now().After(deadline) {
			t.Fatalf("the forward never noticed Pod a went away:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	readErr := func() (error, time.Duration) {
		start := time.Now()
		c, err := net.Dial("tcp", f.Addr())
		if err != nil {
			return err, 0
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return err, time.Since(start)
	}
	if err, took := readErr(); !errors.Is(err, syscall.ECONNRESET) || took < time.Second {
		t.Errorf("first connection: got %v after %s; want a reset after the 1s search", err, took)
	}
	if err, took := readErr(); !errors.Is(err, syscall.ECONNRESET) || took > 500*time.Millisecond {
		t.Errorf("next connection: got %v after %s; want a reset at once", err, took)
	}
	if !strings.Contains(out.String(), "no ready, non-terminating Pod endpoint") {
		t.Errorf("log does not say why:\n%s", out)
	}
}
