//go:build !linux

package ingest

import "net"

// quickAcker is Linux only (TCP_QUICKACK); elsewhere it does nothing.
func quickAcker(net.Conn) func() { return func() {} }
