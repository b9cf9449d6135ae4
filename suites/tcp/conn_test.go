package tcp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/suites/internal/verdict"
)

// echoConn is a connection through the Gateway to a TCP echo backend, past its greeting.
type echoConn struct {
	*net.TCPConn
	r        *bufio.Reader
	greeting tcpecho.Greeting
}

// dialEcho connects to a listener port and reads the backend's greeting line.
func dialEcho(ctx context.Context, port int) (*echoConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", gwtest.HostPort(gw, port))
	if err != nil {
		return nil, fmt.Errorf("dial Gateway listener %d: %w", port, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	g, err := tcpecho.ReadGreeting(r)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("listener %d: %w", port, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return &echoConn{TCPConn: c.(*net.TCPConn), r: r, greeting: g}, nil
}

// backendOn opens a connection to port and returns the backend that greeted it.
func backendOn(ctx context.Context, port int) (string, error) {
	c, err := dialEcho(ctx, port)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.greeting.Backend, nil
}

// convergeOn waits until gwtest.ConvergeInARow connections in a row to port are greeted by want.
func convergeOn(ctx context.Context, port int, want string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for range gwtest.ConvergeInARow {
			b, err := backendOn(ctx, port)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(b).To(Equal(want))
		}
	}).WithContext(ctx).WithTimeout(gwtest.ConvergeTimeout).WithPolling(200*time.Millisecond).Should(Succeed(),
		"listener %d never connected to %s", port, want)
}

// sampleConnections opens connections from concurrency workers and feeds each greeting's
// backend into a sequential share test until it decides or maxConns were counted. A failed
// connection fails the verdict.
func sampleConnections(ctx context.Context, port int, seq *verdict.Sequential, maxConns, concurrency int) verdict.Verdict {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		backend string
		err     error
	}
	out := make(chan res, concurrency)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for issued.Add(1) <= int64(maxConns) && ctx.Err() == nil {
				b, err := backendOn(ctx, port)
				if ctx.Err() != nil {
					return
				}
				out <- res{b, err}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	failed := 0
	for r := range out {
		if seq.Done() {
			continue
		}
		if r.err != nil {
			failed++
			seq.FailWith(fmt.Sprintf("%d connection failed (first: %v)", failed, r.err))
			cancel()
			continue
		}
		if seq.Add(r.backend) {
			cancel()
		}
	}
	if !seq.Done() {
		seq.Finish()
	}
	return seq.Verdict()
}
