package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// quietCheck tells whether an idle pooled connection is fit to reuse: the peer has neither
// closed it nor sent anything unasked (an answer nobody is waiting for, which the next
// request would otherwise read as its own). It peeks at the socket without blocking, as
// net/http's Transport learns the same from its per-connection read loop. It keeps its raw
// connection and callback so that a check allocates nothing.
type quietCheck struct {
	rc    syscall.RawConn
	peek  func(fd uintptr) bool
	quiet bool
	buf   [1]byte
}

func (q *quietCheck) ok(c net.Conn) bool {
	if q.rc == nil {
		sc, ok := c.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		q.rc, q.peek = rc, q.peekFD
	}
	q.quiet = false
	err := q.rc.Read(q.peek)
	return err == nil && q.quiet
}

func (q *quietCheck) peekFD(fd uintptr) bool {
	// A raw call: MSG_DONTWAIT never blocks (see rawio_linux.go for why raw).
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&q.buf[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	var err error
	if e != 0 {
		err = e
	}
	// EAGAIN: nothing to read, the connection is idle as it should be. No error is either
	// the peer's FIN (0 bytes) or unsolicited bytes; any other error, a broken connection.
	q.quiet = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true // never wait for readiness
}
