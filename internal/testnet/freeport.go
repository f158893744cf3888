package testnet

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address ("127.0.0.1:port") nothing listens
// on, reserved until the test ends: a socket bound to it, not listening,
// holds the port (reserve). The kernel then gives it to no bind to port 0
// (another listener of the tests, another FreeAddr, a client's local
// port), which a probe listener closed at once would not prevent — two
// calls in a row could return the same port, and `trellis up` got one port
// as its API and its admin address. A listener that sets SO_REUSEADDR, as
// every Go listener does, still takes the port; until one does,
// connections to it are refused.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return reserve(tb)
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
