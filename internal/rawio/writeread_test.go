package rawio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestWriteRead: requests and answers on one connection, the answer sent
// at once or after a pause, are each one call.
func TestWriteRead(t *testing.T) {
	c, peer := pair(t)
	go func() {
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			n, err := peer.Read(buf)
			if err != nil {
				return
			}
			if i%3 == 1 {
				time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
			}
			if _, err := fmt.Fprintf(peer, "answer to %s", buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64)
	for i := range 200 {
		req := fmt.Sprintf("req%d", i)
		n, err := c.WriteRead([]byte(req), buf)
		if err != nil || string(buf[:n]) != "answer to "+req {
			t.Fatalf("round %d: %q, %v", i, buf[:n], err)
		}
	}
}

// TestWriteReadDeadline: the read deadline bounds the wait for an answer
// that does not come, with net's timeout error.
func TestWriteReadDeadline(t *testing.T) {
	c, peer := pair(t)
	go io.Copy(io.Discard, peer)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.WriteRead([]byte("hello"), make([]byte, 8))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %d, %v; want a timeout", n, err)
	}
}

// TestWriteReadBlockedWrite: a request larger than the socket buffers,
// read slowly by the peer, is written whole (the rest as Write writes it)
// before the answer is read.
func TestWriteReadBlockedWrite(t *testing.T) {
	c, peer := pair(t)
	req := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	go func() {
		time.Sleep(20 * time.Millisecond) // let the socket buffers fill
		n, _ := io.CopyN(io.Discard, peer, int64(len(req)))
		fmt.Fprintf(peer, "got %d", n)
	}()
	buf := make([]byte, 64)
	n, err := c.WriteRead(req, buf)
	if err != nil || string(buf[:n]) != fmt.Sprintf("got %d", len(req)) {
		t.Fatalf("%q, %v", buf[:n], err)
	}
}

// TestWriteReadPeerGone: a peer that closed the connection fails the
// call (a reset, or the end of the stream) rather than leaving it
// waiting.
func TestWriteReadPeerGone(t *testing.T) {
	c, peer := pair(t)
	peer.Close()
	time.Sleep(10 * time.Millisecond)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.WriteRead([]byte("hello"), make([]byte, 8))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("got %d, %v; want the peer's close", n, err)
	}
}

// TestWriteReadClose: Close from another goroutine ends a call waiting
// for its answer (a proxy's client going away).
func TestWriteReadClose(t *testing.T) {
	c, peer := pair(t)
	go io.Copy(io.Discard, peer)
	done := make(chan error, 1)
	go func() {
		_, err := c.WriteRead([]byte("hello"), make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("got %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the wait")
	}
}

// TestWriteReadNotIdle: a connection with something to read before the
// call (the peer's half close, a stray byte) fails at once with
// ErrNotIdle, and nothing reaches the peer.
func TestWriteReadNotIdle(t *testing.T) {
	for _, how := range []string{"half close", "stray byte"} {
		c, peer := pair(t)
		got := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, peer)
			got <- n
		}()
		if how == "half close" {
			_ = peer.CloseWrite()
		} else {
			_, _ = peer.Write([]byte("x"))
		}
		time.Sleep(20 * time.Millisecond) // it arrives, and the poller sees it
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		n, err := c.WriteRead([]byte("request"), make([]byte, 8))
		if n != 0 || !errors.Is(err, ErrNotIdle) || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %d, %v after %v; want ErrNotIdle at once", how, n, err, time.Since(start))
		}
		c.Close()
		if n := <-got; n != 0 {
			t.Errorf("%s: the peer got %d bytes", how, n)
		}
	}
}

// TestWriteReadWithoutRawCalls: where raw calls are not made (other
// systems, sanitizer builds), WriteRead is a checked Write then Read: a
// deadline past and a closed connection are reported as such, not as
// ErrNotIdle, and a round trip allocates nothing.
func TestWriteReadWithoutRawCalls(t *testing.T) {
	c, peer := pair(t)
	c.rc = nil // as on !linux, or under msan/asan
	_ = c.SetDeadline(time.Unix(1, 0))
	var ne net.Error
	if _, err := c.WriteRead([]byte("x"), make([]byte, 8)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("deadline past: %v, want a timeout", err)
	}
	_ = c.SetDeadline(time.Time{})
	go func() {
		b := make([]byte, 64)
		for {
			n, err := peer.Read(b)
			if err != nil {
				return
			}
			peer.Write(b[:n])
		}
	}()
	buf := make([]byte, 8)
	if n, err := c.WriteRead([]byte("ping"), buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("round trip: %q, %v", buf[:n], err)
	}
	if !raceEnabled {
		x := []byte("x")
		if a := testing.AllocsPerRun(100, func() { _, _ = c.WriteRead(x, buf) }); a != 0 {
			t.Errorf("%v allocations per round trip", a)
		}
	}
	c.Close()
	if _, err := c.WriteRead([]byte("x"), buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed: %v, want net.ErrClosed", err)
	}
}
