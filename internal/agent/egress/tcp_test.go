package egress

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// newEchoServer echoes each connection's bytes and, when the client
// half-closes, writes "bye" and closes. It returns its address.
func newEchoServer(t testing.TB) string {
	t.Helper()
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		io.Copy(c, br)
		io.WriteString(c, "bye")
	})
	return addr
}

// roundTrip writes msg and reads it back.
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: got %q, %v", msg, buf, err)
	}
}

func TestTCPSplice(t *testing.T) {
	echo := newEchoServer(t)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("db", []Endpoint{{ID: "db-1", Addr: echo}})
	addr := listen(t, p, "db", Policy{Protocol: TCP, IdleTimeout: time.Hour})

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "hello")
	big := strings.Repeat("0123456789", 100_000)
	go io.WriteString(c, big)
	buf := make([]byte, len(big))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != big {
		t.Fatalf("1 MB echo: %v", err)
	}
	// Half-close: the endpoint sees EOF and still answers.
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close got %q, %v", rest, err)
	}

	var closed Record
	waitFor(t, "the connection's record", func() bool {
		recs := rec.of(KindConnClose)
		if len(recs) == 1 {
			closed = recs[0]
		}
		return len(recs) == 1
	})
	if want := int64(5 + len(big)); closed.BytesIn != want || closed.BytesOut != want+3 ||
		closed.Endpoint != "db-1" || closed.Failure != FailureNone || closed.Protocol != TCP {
		t.Fatalf("record %+v", closed)
	}
	if opens := rec.of(KindConnOpen); len(opens) != 1 {
		t.Fatalf("%d open records", len(opens))
	}
}

func TestTCPConnectRetry(t *testing.T) {
	echo := newEchoServer(t)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("db", []Endpoint{{ID: "dead", Addr: deadAddr(t)}, {ID: "alive", Addr: echo}})
	addr := listen(t, p, "db", Policy{Protocol: TCP, Retry: RetryPolicy{NumRetries: 2, On: RetryConnectFailure}})
	const n = 20
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, "ping")
		c.Close()
	}
	var retried int
	waitFor(t, "records", func() bool { return len(rec.of(KindConnClose)) == n })
	for _, r := range rec.of(KindConnClose) {
		if r.Endpoint != "alive" || r.Retries > 1 {
			t.Fatalf("record %+v", r)
		}
		retried += r.Retries
	}
	if retried == 0 {
		t.Fatal("the dead endpoint was never tried")
	}
}

func TestTCPNoEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		eps  []Endpoint
		want Failure
	}{
		{"none", nil, FailureNoEndpoints},
		{"all dead", []Endpoint{{Addr: "127.0.0.1:1"}}, FailureConnect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			p := newProxy(t, Config{Observer: rec})
			p.SetEndpoints("db", tc.eps)
			addr := listen(t, p, "db", Policy{Protocol: TCP})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read %v, want EOF", err)
			}
			waitFor(t, "the record", func() bool {
				recs := rec.of(KindConnClose)
				return len(recs) == 1 && recs[0].Failure == tc.want
			})
		})
	}
}

// TestTCPIdleTimeout: a silent stream closes after the idle timeout; a
// stream with bytes in one direction only stays open.
func TestTCPIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	echo := newEchoServer(t)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("db", []Endpoint{{Addr: echo}})
	addr := listen(t, p, "db", Policy{Protocol: TCP, IdleTimeout: idle})

	t.Run("silent", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "x")
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %v, want EOF", err)
		}
		if d := time.Since(start); d < idle {
			t.Fatalf("closed after %v, before the idle timeout", d)
		}
		waitFor(t, "the record", func() bool {
			for _, r := range rec.of(KindConnClose) {
				if r.Failure == FailureIdle && r.TimedOut {
					return true
				}
			}
			return false
		})
	})
	t.Run("busy one way", func(t *testing.T) {
		// A sink endpoint: the client talks, nothing comes back.
		sink, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		go func() {
			c, err := sink.Accept()
			if err == nil {
				io.Copy(io.Discard, c)
				c.Close()
			}
		}()
		p.SetEndpoints("db", []Endpoint{{Addr: sink.Addr().String()}})
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 24 { // 3 idle timeouts of writes
			if _, err := io.WriteString(c, "tick"); err != nil {
				t.Fatalf("write: %v", err)
			}
			time.Sleep(idle / 8)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			t.Fatal("a stream busy in one direction was closed as idle")
		}
	})
}

// TestProtocolSwitch: SetPolicy changes how the listener serves its next
// connection.
func TestProtocolSwitch(t *testing.T) {
	echo := newEchoServer(t)
	web := okBackend(t, "web")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{web.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	if r := get(t, newClient(t), addr); r.body != "web" {
		t.Fatalf("HTTP: %q", r.body)
	}
	if err := p.SetPolicy("svc", Policy{Protocol: TCP}); err != nil {
		t.Fatal(err)
	}
	p.SetEndpoints("svc", []Endpoint{{Addr: echo}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// An HTTP request is now just bytes, echoed.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "GET / HTTP/1.1\r\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}
