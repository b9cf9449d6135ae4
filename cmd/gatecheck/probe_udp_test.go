package main

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/udpecho"
)

// udpEcho starts echo-backend's UDP mode on loopback, answering as name.
func udpEcho(t *testing.T, name string) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := udpecho.NewServer(udpecho.Options{Identity: identity.Identity{Backend: name}})
	go s.Serve(udpecho.NewListener(pc))
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return pc.LocalAddr().(*net.UDPAddr)
}

// udpSplitter is a UDP load balancer on loopback in front of real UDP echo backends, as a
// Gateway's UDP listener is. Mode "flow" picks a backend per flow (client address:port) at
// random by weight and forgets the flow after idle without a datagram; "datagram" picks per
// datagram (what per-flow routing must not do); idle 0 never forgets a flow.
func udpSplitter(t *testing.T, mode string, idle time.Duration, ups []*net.UDPAddr, weights []float64) string {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	total := 0.0
	for _, w := range weights {
		total += w
	}
	pick := func() int {
		u := rand.Float64() * total
		for i, w := range weights {
			if u < w {
				return i
			}
			u -= w
		}
		return len(weights) - 1
	}
	type flow struct {
		up   *net.UDPConn
		last time.Time
	}
	var mu sync.Mutex
	flows := map[netip.AddrPort]*flow{}
	newFlow := func(client netip.AddrPort) *flow {
		up, err := net.DialUDP("udp", nil, ups[pick()])
		if err != nil {
			t.Error(err)
			return nil
		}
		f := &flow{up: up, last: time.Now()}
		go func() {
			buf := make([]byte, 65535)
			for {
				n, err := up.Read(buf)
				if err != nil {
					return
				}
				ln.WriteToUDPAddrPort(buf[:n], client)
			}
		}()
		return f
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, client, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			f := flows[client]
			if f != nil && (mode == "datagram" || idle > 0 && time.Since(f.last) > idle) {
				f.up.Close()
				f = nil
			}
			if f == nil {
				if f = newFlow(client); f == nil {
					mu.Unlock()
					continue
				}
				flows[client] = f
			}
			f.last = time.Now()
			f.up.Write(buf[:n])
			mu.Unlock()
		}
	}()
	return ln.LocalAddr().String()
}

func TestProbeUDPThroughSplitter(t *testing.T) {
	ups := []*net.UDPAddr{udpEcho(t, "u1"), udpEcho(t, "u2")}
	// The splitter forgets a flow after 1.5 s without a datagram: long enough that a busy
	// machine's scheduling delays inside a 3-datagram flow do not end it.
	const idle = 1500 * time.Millisecond
	tests := []struct {
		name, mode string
		idle       time.Duration
		weights    []float64
		expect     string
		extra      []string
		wantCode   int
		wantOut    string
	}{
		{"per-flow 70/30 with expiry", "flow", idle, []float64{70, 30}, "u1=70,u2=30", []string{"--idle-timeout", idle.String()}, 0, "decision: PASS"},
		{"served 70/30, declared 80/20", "flow", idle, []float64{70, 30}, "u1=80,u2=20", nil, 1, "split: "},
		{"split per datagram", "datagram", idle, []float64{50, 50}, "u1=50,u2=50", nil, 1, "answered by more than one backend"},
		{"flows never expire", "flow", 0, []float64{50, 50}, "u1=50,u2=50", []string{"--idle-timeout", idle.String(), "--idle-flows", "16"}, 1, "idle expiry: 0 of 16 flows moved while never idle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := udpSplitter(t, tc.mode, tc.idle, ups, tc.weights)
			start := time.Now()
			args := append([]string{"probe", "udp", "--addr", addr, "--expect", tc.expect, "--loss-datagrams", "200"}, tc.extra...)
			out, code, err := runCLI(t, args...)
			t.Logf("%s: exit %d in %s\n%s", tc.name, code, time.Since(start).Round(time.Millisecond), out)
			if code != tc.wantCode {
				t.Errorf("exit code: got %d; want %d (err: %v)", code, tc.wantCode, err)
			}
			if !strings.Contains(out+errString(err), tc.wantOut) {
				t.Errorf("output does not contain %q", tc.wantOut)
			}
		})
	}
}

func TestProbeUDPBadFlags(t *testing.T) {
	_, code, err := runCLI(t, "probe", "udp", "--expect", "u1=1", "--datagrams", "0", "--max-loss", "150")
	if code != 2 || err == nil {
		t.Fatalf("exit %d, %v; want 2 with an error", code, err)
	}
	for _, want := range []string{"flag --addr: required", "flag --datagrams: got 0", "flag --max-loss: got 150"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
