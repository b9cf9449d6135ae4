//go:build !linux

package proxy

import (
	"io"
	"net"
)

// newRawIO: raw system calls are used on Linux only (rawio_linux.go); elsewhere the
// connection's own Read and Write are.
func newRawIO(net.Conn) io.ReadWriter { return nil }
