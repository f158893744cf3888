//go:build !linux

package testnet

import (
	"net"
	"sync"
	"testing"
)

// handedOut is the set of addresses reserve has given this test binary.
var handedOut sync.Map

// reserve finds a free port with a probe listener, closed at once; where
// the port cannot be held, it at least never returns one twice.
func reserve(tb testing.TB) string {
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
