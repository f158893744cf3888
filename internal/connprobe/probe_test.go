package connprobe

import (
	"io"
	"net"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// wrapped is a connection wrapper that names what it wraps.
type wrapped struct{ net.Conn }

func (w wrapped) Unwrap() net.Conn { return w.Conn }

// opaque is a wrapper that does not.
type opaque struct{ net.Conn }

// Usable probes c once.
func Usable(c net.Conn) bool { return New(c).Usable() }

// eventually polls Usable until it reports want (a peer's FIN or data
// takes a moment to arrive), failing after a second.
func eventually(t *testing.T, c net.Conn, want bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for Usable(c) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: Usable stayed %v", what, !want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUsable(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		c, _ := pair(t)
		for range 3 {
			if !Usable(c) || !Usable(wrapped{c}) {
				t.Fatal("an idle open connection is not usable")
			}
		}
	})
	t.Run("peer sent a byte", func(t *testing.T) {
		c, s := pair(t)
		s.Write([]byte("x"))
		eventually(t, c, false, "after unexpected data")
		// Nothing was consumed: the byte is still there to read.
		b := make([]byte, 1)
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(b); n != 1 || err != nil || b[0] != 'x' {
			t.Fatalf("read after the probe: %d %v %q", n, err, b)
		}
	})
	t.Run("peer closed", func(t *testing.T) {
		c, s := pair(t)
		s.Close()
		eventually(t, wrapped{c}, false, "after the peer's close")
	})
	t.Run("own side closed", func(t *testing.T) {
		c, _ := pair(t)
		c.Close()
		if Usable(c) {
			t.Fatal("a closed connection is usable")
		}
	})
	t.Run("socket out of reach", func(t *testing.T) {
		c, s := pair(t)
		s.Close()
		time.Sleep(20 * time.Millisecond)
		if !Usable(opaque{c}) {
			t.Fatal("a wrapper that hides its socket is not taken as usable")
		}
		_, _ = io.ReadAll(c)
	})
}

// TestUsableAllocs: a Prober probes without allocating.
func TestUsableAllocs(t *testing.T) {
	c, _ := pair(t)
	p := New(c)
	if n := testing.AllocsPerRun(100, func() {
		if !p.Usable() {
			t.Fatal("not usable")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per probe", n)
	}
}
