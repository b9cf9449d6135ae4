//go:build !linux

package proxy

import "net"

// connQuiet cannot peek without blocking here; a stale connection is still caught by the
// retry in RoundTrip, bytes after a response by fastBody.finish.
func connQuiet(net.Conn) bool { return true }
