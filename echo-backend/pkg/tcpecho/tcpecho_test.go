package tcpecho_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
)

var testID = identity.Identity{Backend: "tcp-v1", Pod: "pod-t", Namespace: "ns-t", Service: "svc-t"}

func start(t *testing.T) (*tcpecho.Server, string, *records.Store) {
	t.Helper()
	store := records.NewStore(testID, 10)
	srv := tcpecho.NewServer(tcpecho.Options{Identity: testID, Records: store})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String(), store
}

func TestGreetingEchoAndHalfClose(t *testing.T) {
	t.Parallel()
	_, addr, store := start(t)
	var ids []string
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		g, err := tcpecho.ReadGreeting(br)
		if err != nil {
			t.Fatal(err)
		}
		if g.Identity != testID || g.ConnectionID == "" || g.Seq == 0 {
			t.Errorf("greeting: got %+v; want identity %+v, a connection id and a seq", g, testID)
		}
		ids = append(ids, g.ConnectionID)
		payload := strings.Repeat("abcdef", 10000)
		go func() {
			_, _ = io.WriteString(c, payload)
			_ = c.(*net.TCPConn).CloseWrite() // half-close: we still read the echo
		}()
		got, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("read echo after half-close: %v", err)
		}
		if string(got) != payload {
			t.Errorf("echo: got %d bytes; want the %d sent", len(got), len(payload))
		}
		c.Close()
	}
	if ids[0] == ids[1] {
		t.Errorf("connection ids of two connections: got %q twice; want distinct", ids[0])
	}
	if st := store.Stats(); st.ByKind[records.KindTCP] != 2 {
		t.Errorf("tcp records: got %d; want 2", st.ByKind[records.KindTCP])
	}
}

func TestShutdownWaitsForOpenConnection(t *testing.T) {
	t.Parallel()
	srv, addr, _ := start(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := tcpecho.ReadGreeting(br); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a connection was open; want it to wait", err)
	default:
	}
	// The open connection still echoes during shutdown.
	if _, err := io.WriteString(c, "still here"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("still here"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "still here" {
		t.Errorf("echo during shutdown: got %q, %v; want %q", buf, err, "still here")
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("dial after Shutdown: got success; want refused")
	}
}

func TestShutdownDeadlineClosesConnections(t *testing.T) {
	t.Parallel()
	srv, addr, _ := start(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := tcpecho.ReadGreeting(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err == nil {
		t.Errorf("Shutdown with an idle open connection and 100ms: got nil; want a deadline error")
	}
}
