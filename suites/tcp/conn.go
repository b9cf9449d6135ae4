package tcp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
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
	if err := gw.UnknownPort(port); err != nil {
		return nil, err
	}
	c, err := d.DialContext(ctx, "tcp", gw.Addr(port))
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
	return traffic.SampleBackends(ctx, seq, maxConns, concurrency, "connection",
		func(ctx context.Context) (string, error) { return backendOn(ctx, port) },
		func(err error) string { return err.Error() })
}
