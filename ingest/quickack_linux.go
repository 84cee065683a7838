package ingest

import (
	"net"
	"syscall"
)

// quickAcker returns a function that turns on TCP_QUICKACK on c, so the
// kernel acknowledges what it receives at once instead of delaying the ACK
// to ride on data we send. Linux clears the flag again on its own (when
// the connection looks interactive, as an RTMP connection does once we
// answer a "bytes read" report), so it is set before every read. It is
// best effort: an error only means the ACKs may be delayed; for a
// connection that is not TCP it does nothing.
func quickAcker(c net.Conn) func() {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return func() {}
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return func() {}
	}
	set := func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1) }
	return func() { _ = raw.Control(set) }
}
