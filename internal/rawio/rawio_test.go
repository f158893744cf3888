package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/connprobe"
)

// pair returns a raw Conn and the plain TCP connection at the other end.
func pair(t testing.TB) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptTCP()
		ch <- res{c, err}
	}()
	d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	c := New(d)
	t.Cleanup(func() { c.Close(); r.c.Close() })
	return c, r.c
}

func TestRaw(t *testing.T) {
	c, _ := pair(t)
	if want := runtime.GOOS == "linux" && !instrumented; (c.rc != nil) != want {
		t.Fatalf("raw calls on %s: %v, want %v", runtime.GOOS, c.rc != nil, want)
	}
}

// TestHandoff: what a goroutine did before a raw write is seen by the
// goroutine whose raw read received the bytes. Under the race detector
// (as CI runs the tests) this fails unless the raw calls are annotated.
func TestHandoff(t *testing.T) {
	c, peer := pair(t)
	d := New(peer)
	var shared [100]int
	done := make(chan int)
	go func() {
		buf := make([]byte, 1)
		sum := 0
		for range len(shared) {
			if _, err := io.ReadFull(d, buf); err != nil {
				t.Error(err)
				break
			}
			sum += shared[buf[0]]
		}
		done <- sum
	}()
	want := 0
	for i := range shared {
		shared[i] = i + 1
		want += i + 1
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-done; got != want {
		t.Fatalf("reader summed %d, want %d", got, want)
	}
}

func TestExchange(t *testing.T) {
	c, peer := pair(t)
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if n, err := c.Write([]byte("world")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	n, err = io.ReadFull(peer, buf[:5])
	if err != nil || string(buf[:n]) != "world" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
}

// TestLargeBothWays writes far more than the socket buffers hold, both
// ways at once: writes wait for room and resume where they stopped, reads
// wait for data, and every byte arrives in order.
func TestLargeBothWays(t *testing.T) {
	c, peer := pair(t)
	out := make([]byte, 8<<20)
	in := make([]byte, 8<<20)
	rand.Read(out)
	rand.Read(in)
	var wg sync.WaitGroup
	var gotPeer, gotRaw []byte
	var errs [4]error
	wg.Go(func() {
		_, errs[0] = c.Write(out)
		c.CloseWrite()
	})
	wg.Go(func() { gotPeer, errs[1] = io.ReadAll(peer) })
	wg.Go(func() {
		_, errs[2] = peer.Write(in)
		peer.CloseWrite()
	})
	wg.Go(func() {
		// Small reads, so that many of them wait.
		var b bytes.Buffer
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				errs[3] = err
				break
			}
		}
		gotRaw = b.Bytes()
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if !bytes.Equal(gotPeer, out) {
		t.Fatalf("peer got %d bytes, not what was written", len(gotPeer))
	}
	if !bytes.Equal(gotRaw, in) {
		t.Fatalf("raw side got %d bytes, not what was written", len(gotRaw))
	}
}

func TestEOF(t *testing.T) {
	c, peer := pair(t)
	peer.Write([]byte("x"))
	peer.Close()
	buf := make([]byte, 4)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := c.Read(make([]byte, 4))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %d, %v; want a timeout", n, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %v is not a read OpError", err)
	}
	// A deadline already past fails at once, and clearing it works.
	c.SetReadDeadline(time.Unix(1, 0))
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v", err)
	}
	c.SetReadDeadline(time.Time{})
}

// TestWriteDeadline: a peer that does not read stops a large write at the
// deadline, with what was written counted.
func TestWriteDeadline(t *testing.T) {
	c, _ := pair(t)
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Write(make([]byte, 64<<20))
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("Write = %d, %v; want a write timeout", n, err)
	}
	if n <= 0 || n >= 64<<20 {
		t.Fatalf("Write wrote %d bytes; want some, not all", n)
	}
}

// TestCloseUnblocksRead: Close from another goroutine ends a waiting
// Read with net.ErrClosed, as for any net.Conn.
func TestCloseUnblocksRead(t *testing.T) {
	c, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 4))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v; want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v; want net.ErrClosed", err)
	}
	if _, err := c.Write(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("empty Write after Close = %v; want net.ErrClosed", err)
	}
}

// TestReset: a reset by the peer is the system call's error, as an
// *net.OpError around an *os.SyscallError.
func TestReset(t *testing.T) {
	c, peer := pair(t)
	peer.SetLinger(0)
	peer.Close()
	time.Sleep(10 * time.Millisecond)
	_, err := c.Read(make([]byte, 4))
	var se *os.SyscallError
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &se) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read after a reset = %v; want ECONNRESET in a read OpError", err)
	}
}

// TestProbeSeesThrough: connprobe finds the socket under a Conn, so a
// pooled raw connection is still probed.
func TestProbeSeesThrough(t *testing.T) {
	c, peer := pair(t)
	p := connprobe.New(c)
	if !p.Usable() {
		t.Fatal("a silent open connection is not usable")
	}
	peer.Write([]byte("stray"))
	deadline := time.Now().Add(2 * time.Second)
	for p.Usable() {
		if time.Now().After(deadline) {
			t.Fatal("the probe does not see bytes sent on the raw connection")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWrap(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("Wrap changed a connection that is not TCP")
	}
	c, _ := pair(t)
	w, ok := Wrap(c.TCPConn).(*Conn)
	if !ok || w.Unwrap() != c.TCPConn {
		t.Fatal("Wrap of a TCP connection is not a Conn over it")
	}
}

// BenchmarkPingPong is one small exchange over loopback: the raw Conn's
// side against net.TCPConn's.
func BenchmarkPingPong(b *testing.B) {
	for _, raw := range []bool{true, false} {
		name := "tcpconn"
		if raw {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			c, peer := pair(b)
			var conn net.Conn = c.TCPConn
			if raw {
				conn = c
			}
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := peer.Read(buf)
					if err != nil {
						return
					}
					if _, err := peer.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
