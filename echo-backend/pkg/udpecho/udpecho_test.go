package udpecho

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
)

func TestAnswers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Options{Identity: identity.Identity{Backend: "v1", Pod: "p-1"}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(NewListener(pc)) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange := func(req []byte) Answer {
		t.Helper()
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to %q: %v", req, err)
		}
		a, err := ParseAnswer(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := exchange(Request("f1", 7, 200))
	if a.Backend != "v1" || a.Pod != "p-1" || a.Flow != "f1" || a.Seq != 7 || a.Received != 1 || a.RemoteAddr != c.LocalAddr().String() {
		t.Errorf("answer %+v", a)
	}
	if len(Request("f1", 7, 200)) != 200 {
		t.Errorf("request not padded to 200 bytes")
	}
	a = exchange([]byte("hello"))
	if a.Seq != -1 || a.Raw != "hello" || a.Received != 2 {
		t.Errorf("answer to a foreign datagram %+v; want seq -1, raw hello, received 2", a)
	}
	a = exchange([]byte("GCU1 f2 -3"))
	if a.Seq != -1 {
		t.Errorf("negative seq accepted: %+v", a)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}
