package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestRawIO checks rawIO against net.Conn's contract: data both ways, a write larger than
// the socket buffers (waits for the peer), EOF, a read deadline, and a write to a reset
// connection.
func TestRawIO(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(peerc)
			return
		}
		peerc <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer := <-peerc
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	r := newRawIO(nc)
	if r == nil {
		t.Fatal("newRawIO: nil for a TCP connection")
	}

	// Deadline: no data, the poller's timeout.
	nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := r.Read(make([]byte, 8)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with nothing sent and a deadline: got %d, %v; want 0, a deadline error", n, err)
	}
	nc.SetReadDeadline(time.Time{})

	// Both ways.
	peer.Write([]byte("hello"))
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("Read: got %q, %v; want \"hello\"", buf[:n], err)
	}

	// Larger than the socket buffers: Write waits for the peer to read.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		b := make([]byte, len(big))
		io.ReadFull(peer, b)
		got <- b
	}()
	if n, err := r.Write(big); n != len(big) || err != nil {
		t.Errorf("Write of 8 MiB: got %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Errorf("the peer read other bytes than written")
	}

	// The peer closes: EOF.
	peer.Close()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after the peer closed: got %d, %v; want 0, io.EOF", n, err)
	}
	// Writing on: the peer answers with a reset, and a later write fails.
	var werr error
	for range 100 {
		if _, werr = r.Write([]byte("x")); werr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Errorf("Write to a closed peer: got %v; want EPIPE or ECONNRESET", werr)
	}
	// Closed locally: the poller's error.
	nc.Close()
	if _, err := r.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: got %v; want net.ErrClosed", err)
	}
}
