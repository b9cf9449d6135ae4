package proxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection's socket with raw system calls, for the HTTP/1
// data path (h1Server's client connections, the h1 fast path's upstream connections).
//
// Go's sockets are non-blocking: a read or write either completes at once or fails with
// EAGAIN, and then the goroutine waits in the runtime's poller. net.Conn's Read and Write
// make that call through syscall.Syscall, which enters the scheduler's syscall state: the
// system monitor is woken (it then polls every 20 µs), and a P whose call takes a few tens
// of µs (a loopback write delivers to the peer inline) is handed to another thread. For a
// proxy making four such calls per request, that bookkeeping cost more CPU than the calls
// (hack/bench-proxy.sh: CPU per request 1.27-1.35x nginx's before, 1.08-1.09x after). A raw
// call skips it, which is right for calls that cannot block; waiting on EAGAIN still goes
// through the poller (syscall.RawConn), deadlines included.
type rawIO struct {
	rc   syscall.RawConn
	buf  []byte
	n    int
	err  syscall.Errno
	rdFn func(uintptr) bool // r.rd and r.wr, bound once so that a call allocates nothing
	wrFn func(uintptr) bool
}

// newRawIO returns nil when nc is not a socket the runtime polls.
func newRawIO(nc net.Conn) *rawIO {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.rdFn, r.wrFn = r.rd, r.wr
	return r
}

func (r *rawIO) rd(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch e {
		case syscall.EAGAIN:
			return false // wait in the poller
		case syscall.EINTR:
			continue
		}
		r.n, r.err = int(n), e
		return true
	}
}

func (r *rawIO) wr(fd uintptr) bool {
	for len(r.buf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch e {
		case 0:
			r.n += int(n)
			r.buf = r.buf[n:]
		case syscall.EAGAIN:
			return false // the socket buffer is full: wait in the poller
		case syscall.EINTR:
		default:
			r.err = e
			return true
		}
	}
	return true
}

// Read is net.Conn's Read, but errors are the system's (io.EOF, syscall.Errno) or the
// poller's (os.ErrDeadlineExceeded, net.ErrClosed), not wrapped in *net.OpError.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.buf, r.n, r.err = p, 0, 0
	err := r.rc.Read(r.rdFn)
	r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case r.err != 0:
		return 0, r.err
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// Write writes all of p unless an error stops it, as net.Conn's Write.
func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.buf, r.n, r.err = p, 0, 0
	err := r.rc.Write(r.wrFn)
	r.buf = nil
	if err == nil && r.err != 0 {
		err = r.err
	}
	return r.n, err
}
