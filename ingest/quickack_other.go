//go:build !linux

package ingest

import "net"

// quickAck is Linux only (TCP_QUICKACK); elsewhere it does nothing.
func quickAck(net.Conn) {}
