package proxy

import (
	"net"
	"syscall"
)

// connQuiet reports whether an idle pooled connection is fit to reuse: the peer has neither
// closed it nor sent anything unasked (an answer nobody is waiting for, which the next
// request would otherwise read as its own). It peeks at the socket without blocking, as
// net/http's Transport learns the same from its per-connection read loop.
func connQuiet(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the connection is idle as it should be. No error is
		// either the peer's FIN (0 bytes) or unsolicited bytes; any other error, a
		// broken connection.
		quiet = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	return err == nil && quiet
}
