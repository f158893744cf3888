package testnet

import (
	"net"
	"testing"
)

// TestFreeAddrReserved: addresses asked for in a row never repeat, no
// bind to port 0 (a listener, as another test's) takes one while it is
// reserved, connections to one are refused, and a Go listener can still
// take it.
func TestFreeAddrReserved(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
	}
	for range 2000 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := ln.Addr().String()
		ln.Close()
		if seen[a] {
			t.Fatalf("a listener on port 0 got the reserved %s", a)
		}
	}
	a := FreeAddr(t)
	if c, err := net.Dial("tcp", a); err == nil {
		c.Close()
		t.Fatalf("a connection to the reserved %s was accepted", a)
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("a listener cannot take the reserved %s: %v", a, err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatalf("dial the listener on %s: %v", a, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
