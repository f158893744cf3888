package testnet

import (
	"net"
	"sync"
	"testing"
)

// handedOut is the set of loopback addresses FreeAddr has given this test
// binary. The kernel may offer a port again as soon as the probe listener
// that found it closes, so two calls in a row can return the same port —
// and a `trellis up` given one port as both its API and its admin address
// fails to start. The set is process-wide because ports are.
var handedOut sync.Map

// FreeAddr returns a loopback address ("127.0.0.1:port") nothing listens on
// right now and that no earlier call in this process returned.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, dup := handedOut.LoadOrStore(addr, struct{}{}); !dup {
			return addr
		}
	}
	tb.Fatal("testnet: no loopback port left that was not handed out before")
	return ""
}

// FreePort is FreeAddr's port.
func FreePort(tb testing.TB) int32 {
	tb.Helper()
	addr, err := net.ResolveTCPAddr("tcp", FreeAddr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return int32(addr.Port)
}
