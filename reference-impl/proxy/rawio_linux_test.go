package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestRawIO checks rawIO against net.Conn's contract: data both ways, a write larger than
// the socket buffers (waits for the peer), EOF, a read deadline, and a write to a reset
// connection.
func TestRawIO(t *testing.T) {
	t.Parallel()
	nc, peer := tcpPair(t)
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

// TestRawIOSendWithRead checks a request sent by the Read of its answer: the answer arrives,
// a connection whose peer sent unasked bytes or closed is refused without writing, a request
// larger than the socket buffers is written in full, and an expired deadline sends nothing.
func TestRawIOSendWithRead(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func(t *testing.T) (*rawIO, net.Conn, net.Conn) {
		t.Helper()
		peerc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			peerc <- c
		}()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer := <-peerc
		if peer == nil {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { nc.Close(); peer.Close() })
		return newRawIO(nc), nc, peer
	}
	// nothingArrives reports whether the peer reads nothing within 50 ms.
	nothingArrives := func(peer net.Conn) bool {
		peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		defer peer.SetReadDeadline(time.Time{})
		n, err := peer.Read(make([]byte, 16))
		return n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
	}
	buf := make([]byte, 16)

	t.Run("answered", func(t *testing.T) {
		r, _, peer := pair(t)
		for i := range 3 { // as a pooled connection: checked from the second request on
			go func() {
				b := make([]byte, 4)
				if _, err := io.ReadFull(peer, b); err == nil && string(b) == "ping" {
					peer.Write([]byte("pong"))
				}
			}()
			r.sendWithRead([]byte("ping"), i > 0)
			if n, err := r.Read(buf); err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("request %d: Read: got %q, %v; want \"pong\"", i, buf[:n], err)
			}
		}
	})
	t.Run("unsolicited bytes", func(t *testing.T) {
		r, _, peer := pair(t)
		peer.Write([]byte("HTTP/1.1 200 OK\r\n"))
		time.Sleep(20 * time.Millisecond)
		r.sendWithRead([]byte("ping"), true)
		if n, err := r.Read(buf); err != errNotQuiet {
			t.Fatalf("Read: got %q, %v; want errNotQuiet", buf[:n], err)
		}
		if !nothingArrives(peer) {
			t.Errorf("the request was written to a connection that was not quiet")
		}
		// On a new connection, the request is sent and the bytes already there are read
		// at once (no wakeup would come for them).
		r.sendWithRead([]byte("ping"), false)
		if n, err := r.Read(buf); err != nil || !bytes.HasPrefix([]byte("HTTP/1.1 200 OK\r\n"), buf[:n]) || n == 0 {
			t.Fatalf("Read on a new connection: got %q, %v; want the peer's bytes", buf[:n], err)
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(peer, b); err != nil || string(b) != "ping" {
			t.Errorf("the peer got %q, %v; want the request", b, err)
		}
	})
	t.Run("peer closed", func(t *testing.T) {
		r, _, peer := pair(t)
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		r.sendWithRead([]byte("ping"), true)
		if n, err := r.Read(buf); err != errNotQuiet || !staleConnError(err) {
			t.Fatalf("Read: got %q, %v; want errNotQuiet (a stale connection)", buf[:n], err)
		}
	})
	t.Run("larger than the socket buffers", func(t *testing.T) {
		r, _, peer := pair(t)
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
		got := make(chan bool, 1)
		go func() {
			time.Sleep(50 * time.Millisecond)
			b := make([]byte, len(big))
			_, err := io.ReadFull(peer, b)
			got <- err == nil && bytes.Equal(b, big)
			peer.Write([]byte("pong"))
		}()
		r.sendWithRead(big, true)
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "pong" {
			t.Fatalf("Read: got %q, %v; want \"pong\"", buf[:n], err)
		}
		if !<-got {
			t.Errorf("the peer read other bytes than sent")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		r, nc, peer := pair(t)
		nc.SetReadDeadline(time.Unix(1, 0))
		r.sendWithRead([]byte("ping"), true)
		if n, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: got %q, %v; want a deadline error", buf[:n], err)
		}
		if !nothingArrives(peer) {
			t.Errorf("the request was written after the deadline had passed")
		}
		// The next Read is an ordinary one.
		nc.SetReadDeadline(time.Time{})
		peer.Write([]byte("x"))
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "x" {
			t.Errorf("next Read: got %q, %v; want \"x\"", buf[:n], err)
		}
	})
}

// TestRawIOReadSession checks readSession's reads: a read that returned less than asked
// makes the next one report errWouldBlock without trying the socket (bytes the peer sent
// since are not read yet), and the poller's report of those bytes is kept, so serve is
// called again and reads them; a dup'd connection reads the socket meanwhile; a deadline
// ends the session.
func TestRawIOReadSession(t *testing.T) {
	t.Parallel()
	nc, peer := tcpPair(t)
	r := newRawIO(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	var got []string
	calls := 0
	done := make(chan error, 1)
	io.WriteString(peer, "first")
	go func() {
		done <- r.readSession(func() bool {
			calls++
			for {
				n, err := r.Read(buf)
				switch {
				case err == errWouldBlock:
					got = append(got, "wait")
					return false
				case err != nil:
					got = append(got, "error: "+err.Error())
					return true
				}
				got = append(got, string(buf[:n]))
				switch string(buf[:n]) {
				case "first":
					// The peer's next bytes are queued when its write returns (loopback);
					// this session saw the socket empty, so it waits for the poller's report.
					io.WriteString(peer, "second")
				case "second":
					wc, err := r.dup()
					if err != nil {
						got = append(got, "dup: "+err.Error())
						return true
					}
					io.WriteString(peer, "third")
					wc.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := wc.Read(buf)
					wc.Close()
					got = append(got, "dup "+string(buf[:n]))
					if err != nil {
						got = append(got, "dup: "+err.Error())
					}
					io.WriteString(peer, "fourth")
				case "fourth":
					nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				}
			}
		})
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("readSession did not return within 10 s")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("readSession: got %v; want the deadline's error", err)
	}
	// "wait" after "first" and after the dup's read: the socket was seen empty, so the
	// read did not try it although the peer's next bytes were there.
	if want := []string{"first", "wait", "second", "dup third", "wait", "fourth", "wait"}; !slices.Equal(got, want) {
		t.Errorf("reads: got %q; want %q", got, want)
	}
	if calls != 3 {
		t.Errorf("serve called %d times; want 3 (first, then once per wait)", calls)
	}
}

// tcpPair returns both ends of a TCP connection on loopback, closed when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
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
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server = <-peerc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
