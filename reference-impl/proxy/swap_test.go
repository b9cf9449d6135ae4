package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// TestConfigSwapUnderLoad swaps the configuration 100 times (flipping the backend, a response
// header filter, and adding/removing a second listener) while clients send requests
// continuously over HTTP/1.1 keep-alive and h2c; every request must get a 2xx.
func TestConfigSwapUnderLoad(t *testing.T) {
	t.Parallel()
	v1, v2 := startBackend(t, "v1"), startBackend(t, "v2")
	port, extra := freePort(t), freePort(t)
	snap := func(version int64) *ir.Snapshot {
		b := v1.irBackend(1)
		if version%2 == 0 {
			b = v2.irBackend(1)
		}
		ls := []ir.Listener{{Name: "main", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
			RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"},
			Rules: []ir.HTTPRule{{Filters: []ir.Filter{{Type: ir.FilterResponseHeaderModifier, ResponseHeaderModifier: &ir.HeaderModifier{
				Set: []ir.Header{{Name: "X-Config-Version", Value: fmt.Sprint(version)}}}}},
				Backends: []ir.Backend{b}}}}}}}
		if version%3 == 0 {
			ls = append(ls, ir.Listener{Name: "extra", Port: extra, Protocol: ir.ProtocolHTTP})
		}
		return snapshot(version, ls...)
	}
	p := startProxy(t, Options{}, snap(1))

	ctx, cancel := context.WithCancel(context.Background())
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	seen := sync.Map{}
	var wg sync.WaitGroup
	for i := range 6 {
		c := h1Client()
		if i%2 == 1 {
			c = h2cClient()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				res, err := c.Get(proxyURL(port, "/"))
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode/100 != 2 {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, res.Status)
					continue
				}
				seen.Store(res.Header.Get("X-Config-Version"), true)
				ok.Add(1)
			}
		}()
	}
	for v := int64(2); v <= 101; v++ {
		time.Sleep(5 * time.Millisecond)
		if err := p.Apply(snap(v)); err != nil {
			t.Errorf("Apply version %d: %v", v, err)
		}
		if hasExtra := p.Addr(extra) != nil; hasExtra != (v%3 == 0) {
			t.Errorf("version %d: extra listener open %v; want %v", v, hasExtra, v%3 == 0)
		}
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	wg.Wait()
	versions := 0
	seen.Range(func(any, any) bool { versions++; return true })
	t.Logf("%d requests succeeded across %d distinct config versions during 100 swaps", ok.Load(), versions)
	if bad.Load() != 0 {
		t.Errorf("failed requests during swaps: got %d (first: %v); want 0", bad.Load(), firstErr.Load())
	}
	if ok.Load() < 200 || versions < 10 {
		t.Errorf("load was too light to mean anything: %d requests over %d versions; want >= 200 over >= 10", ok.Load(), versions)
	}
	if got := p.Version(); got != 101 {
		t.Errorf("applied version: got %d; want 101", got)
	}
}

// TestApplyRejectsInvalidAndKeepsServing checks that an invalid snapshot, or one whose port
// cannot be bound, is refused and the previous one keeps serving.
func TestApplyRejectsInvalidAndKeepsServing(t *testing.T) {
	t.Parallel()
	v1 := startBackend(t, "v1")
	port := freePort(t)
	good := snapshot(1, ir.Listener{Name: "main", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{v1.irBackend(1)}}}}}})
	p := startProxy(t, Options{}, good)
	bad := snapshot(2, ir.Listener{Name: "main", Port: port, Protocol: "SCTP"})
	if err := p.Apply(bad); err == nil {
		t.Errorf("Apply(invalid protocol): got nil error; want a validation error")
	}
	// Occupy a port so the next snapshot cannot bind it.
	busy := startBackend(t, "busy")
	unbindable := snapshot(3, good.Listeners[0], ir.Listener{Name: "busy", Port: int32(busy.addr.Port), Protocol: ir.ProtocolHTTP})
	if err := p.Apply(unbindable); err == nil {
		t.Errorf("Apply(port in use): got nil error; want a bind error")
	}
	if got := p.Version(); got != 1 {
		t.Errorf("version after rejected snapshots: got %d; want 1", got)
	}
	res, e := do(t, h1Client(), "GET", proxyURL(port, "/"), "x", nil)
	if res.StatusCode != 200 || e.Backend != "v1" {
		t.Errorf("after rejected snapshots: got %d from %q; want 200 from v1", res.StatusCode, e.Backend)
	}
	var buf = new(stringsBuilder)
	p.Metrics().WriteText(buf)
	for _, want := range []string{`gatecheck_proxy_config_applies_total{result="rejected"} 2`, `gatecheck_proxy_config_version 1`, `gatecheck_proxy_requests_total{route="test/r/0",backend="test/v1",code="200"} 1`} {
		if !contains(buf.String(), want) {
			t.Errorf("metrics: missing %q in:\n%s", want, buf.String())
		}
	}
}

// TestListenerChangesKeepOtherConnections keeps a TCP connection and an HTTP keep-alive
// connection open while other listeners are added and removed, and while the TCP listener
// itself is removed: established connections keep working; only new ones see the change.
func TestListenerChangesKeepOtherConnections(t *testing.T) {
	t.Parallel()
	echoBackend := startTCPEchoBackend(t)
	v1 := startBackend(t, "v1")
	tcpPort, httpPort, extraPort := freePort(t), freePort(t), freePort(t)
	tcpL := ir.Listener{Name: "tcp", Port: tcpPort, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "t"}, Backends: []ir.Backend{echoBackend}}}}
	httpL := ir.Listener{Name: "http", Port: httpPort, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{v1.irBackend(1)}}}}}}
	extraL := ir.Listener{Name: "extra", Port: extraPort, Protocol: ir.ProtocolHTTP}
	p := startProxy(t, Options{}, snapshot(1, tcpL, httpL))
	tc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(tcpPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	hc := h1Client()
	ping := func(step string) {
		t.Helper()
		if _, err := io.WriteString(tc, step+"\n"); err != nil {
			t.Fatalf("%s: tcp write: %v", step, err)
		}
		buf := make([]byte, len(step)+1)
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != step+"\n" {
			t.Fatalf("%s: tcp echo: got %q, %v; want %q", step, buf, err, step+"\n")
		}
		res, e := do(t, hc, "GET", proxyURL(httpPort, "/"), "x", nil)
		if res.StatusCode != 200 || e.Backend != "v1" {
			t.Fatalf("%s: http: got %d from %q; want 200 from v1", step, res.StatusCode, e.Backend)
		}
	}
	ping("before")
	if err := p.Apply(snapshot(2, tcpL, httpL, extraL)); err != nil {
		t.Fatal(err)
	}
	ping("after-adding-a-listener")
	if err := p.Apply(snapshot(3, tcpL, httpL)); err != nil {
		t.Fatal(err)
	}
	ping("after-removing-a-listener")
	if err := p.Apply(snapshot(4, httpL)); err != nil {
		t.Fatal(err)
	}
	// The TCP listener is gone: the established connection still works, a new one is refused.
	ping("after-removing-the-tcp-listener")
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(tcpPort)), time.Second); err == nil {
		c.Close()
		t.Errorf("dial removed TCP listener: got a connection; want refused")
	}
}

// startTCPEchoBackend echoes every connection byte for byte.
func startTCPEchoBackend(t *testing.T) ir.Backend {
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
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ir.Backend{Name: "test/tcp-echo", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}
}
