// Package testnet holds socket helpers for tests: a raw TCP peer that
// serves each connection with a function, for protocol tests that need
// bytes a real server would never send.
package testnet

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
)

// Serve listens on a free loopback port until the test ends and serves
// each accepted connection with serve on its own goroutine, closing the
// connection when serve returns. It returns the address and a count of
// the connections accepted.
func Serve(tb testing.TB, serve func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int64) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String(), conns
}
