package proxy

import (
	"io"
	"net"
	"os"
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
	rdFn func(uintptr) bool // r.rd, r.wr and r.sendRd, bound once so that a call allocates nothing
	wrFn func(uintptr) bool

	// A request the next Read sends before it waits for the answer (sendWithRead).
	sendRdFn func(uintptr) bool
	send     []byte
	pooled   bool // refuse a connection that is not quiet
	notQuiet bool
	peek     [1]byte

	// Within readSession: the socket, and whether the last read found it empty (or
	// returned less than asked) since the poller last reported it readable.
	inSession bool
	fd        uintptr
	drained   bool
}

var (
	_ requestSender = (*rawIO)(nil)
	_ readSessioner = (*rawIO)(nil)
)

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
	r.rdFn, r.wrFn, r.sendRdFn = r.rd, r.wr, r.sendRd
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

// sendWithRead makes the next Read write p first, from within its poller wait. The Read
// peeks at the socket (as quietCheck does) once the read side is armed (RawConn.Read resets
// the poller's readiness before its first call): when nothing is there, whatever arrives
// later, the answer included, wakes the wait, so after writing p the Read waits at once
// instead of first finding the socket empty. The peek replaces a pooled connection's
// quietCheck and that empty read: one system call less per request. When something is
// there (bytes, the peer's close or an error): for a pooled connection the Read returns
// errNotQuiet, having written nothing; for a new one it writes p and reads what is there.
// The caller keeps p unchanged until that Read.
func (r *rawIO) sendWithRead(p []byte, pooled bool) {
	r.send, r.pooled = p, pooled
}

func (r *rawIO) sendRd(fd uintptr) bool {
	if r.send == nil {
		return r.rd(fd) // sent: read the answer
	}
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.peek[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	quiet := e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
	if !quiet && r.pooled {
		r.send, r.notQuiet = nil, true
		return true
	}
	for len(r.send) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.send[0])), uintptr(len(r.send)))
		switch e {
		case 0:
			r.send = r.send[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true // the socket buffer is full: Read writes the rest through the poller
		default:
			r.send, r.err = nil, e
			return true
		}
	}
	r.send = nil
	if !quiet {
		return r.rd(fd) // no wakeup would come for what is already there
	}
	return false // wait for the answer
}

// readSession runs serve within one wait of the poller for the socket to be readable
// (RawConn.Read): serve is called at once and again each time the socket may have become
// readable, until it returns true; Reads it makes never wait but fail with errWouldBlock
// when the socket is empty. Go's Read resets the poller's readiness on every call, so each
// one must first try the socket, and a connection waiting for its client's next request
// finds it empty (EAGAIN) before it waits: one read system call per request more than an
// event loop makes (nginx waits for its event, having seen the last read return less than
// it asked for). Within one RawConn.Read the readiness is kept: a Read that returned less
// than asked, or EAGAIN, has seen the socket empty, and whatever arrives after it makes the
// poller report the socket readable again (Go's poller is edge-triggered), so the next
// Read waits instead of trying (errWouldBlock without a system call). The read side stays
// held by the session: another goroutine must read the socket through dup's descriptor.
// The error is the poller's (deadline, close) or nil.
func (r *rawIO) readSession(serve func() bool) error {
	r.inSession = true
	defer func() { r.inSession = false }()
	return r.rc.Read(func(fd uintptr) bool {
		r.fd, r.drained = fd, false // called first, or the poller reported the socket readable
		return serve()
	})
}

// sessionRead is Read within readSession.
func (r *rawIO) sessionRead(p []byte) (int, error) {
	if r.drained {
		return 0, errWouldBlock
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, r.fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.drained = true
			return 0, errWouldBlock
		default:
			return 0, e
		}
		if n == 0 {
			return 0, io.EOF
		}
		// Less than asked: the socket is empty now (a TCP read takes all that is queued,
		// and what arrives during it, up to len(p)).
		r.drained = int(n) < len(p)
		return int(n), nil
	}
}

// dup returns a second connection to the socket, with its own descriptor and poller
// registration, for a goroutine that reads the socket while readSession holds the read side
// (h1Conn's watcher). Closing either leaves the socket open for the other.
func (r *rawIO) dup() (net.Conn, error) {
	var nfd uintptr
	var errno syscall.Errno
	if err := r.rc.Control(func(fd uintptr) {
		nfd, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", errno)
	}
	f := os.NewFile(nfd, "dup")
	defer f.Close() // FileConn has its own descriptor
	return net.FileConn(f)
}

// Read is net.Conn's Read, but errors are the system's (io.EOF, syscall.Errno) or the
// poller's (os.ErrDeadlineExceeded, net.ErrClosed), not wrapped in *net.OpError.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.inSession {
		return r.sessionRead(p)
	}
	r.buf, r.n, r.err = p, 0, 0
	if r.send == nil {
		err := r.rc.Read(r.rdFn)
		r.buf = nil
		return r.readResult(err)
	}
	err := r.rc.Read(r.sendRdFn)
	r.buf = nil
	switch {
	case err != nil:
		r.send = nil
		return 0, err
	case r.notQuiet:
		r.notQuiet = false
		return 0, errNotQuiet
	case r.send != nil:
		// Partly written: the rest waits for room in the poller, deadlines included.
		rest := r.send
		r.send = nil
		if _, err := r.Write(rest); err != nil {
			return 0, err
		}
		return r.Read(p)
	}
	return r.readResult(nil)
}

func (r *rawIO) readResult(err error) (int, error) {
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
