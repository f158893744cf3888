package h1client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testnet"
)

// peer serves each connection with serve on a loopback port and counts
// the connections.
func peer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int64) {
	return testnet.Serve(t, serve)
}

// keepAlive answers every request of a connection with its method and
// path, and closes after one when closeAfter is set.
func keepAlive(closeAfter bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(r.Body)
			msg := r.Method + " " + r.URL.Path + " " + string(b)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
			if closeAfter {
				return
			}
		}
	}
}

func newTransport(t *testing.T, cfg Config) *Transport {
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if cfg.MaxIdlePerAddr == 0 {
		cfg.MaxIdlePerAddr = 4
	}
	tr := New(cfg)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func send(t *testing.T, tr *Transport, ctx context.Context, method, addr, path, body string) (*http.Response, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(r)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func TestFits(t *testing.T) {
	for _, tc := range []struct {
		body string
		n    int64
		want bool
	}{{"", 0, true}, {"abc", 3, true}, {strings.Repeat("a", MaxBody), MaxBody, true},
		{strings.Repeat("a", MaxBody+1), MaxBody + 1, false}, {"abc", -1, false}} {
		r, _ := http.NewRequest("POST", "http://x/", strings.NewReader(tc.body))
		if tc.body == "" {
			r.Body = nil
		}
		r.ContentLength = tc.n
		if got := Fits(r); got != tc.want {
			t.Errorf("body of %d bytes (length %d): Fits %v, want %v", len(tc.body), tc.n, got, tc.want)
		}
	}
}

// TestReuse: sequential exchanges share one connection.
func TestReuse(t *testing.T) {
	addr, conns := peer(t, keepAlive(false))
	tr := newTransport(t, Config{})
	for i := range 10 {
		_, body, err := send(t, tr, context.Background(), "POST", addr, "/p", fmt.Sprint(i))
		if err != nil || body != fmt.Sprintf("POST /p %d", i) {
			t.Fatalf("exchange %d: %q %v", i, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 10 sequential exchanges", n)
	}
	if n := tr.Idle(addr); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
}

// TestStale: the peer closes after each response without saying so. A
// GET on a closed pooled connection is sent again on a new one, and the
// probe finds the closed connection before a POST is written to it.
func TestStale(t *testing.T) {
	addr, conns := peer(t, keepAlive(true))
	tr := newTransport(t, Config{})
	ctx := context.Background()
	for i := range 3 {
		time.Sleep(20 * time.Millisecond) // the peer's close arrives
		if _, body, err := send(t, tr, ctx, "GET", addr, "/g", ""); err != nil || body != "GET /g " {
			t.Fatalf("GET %d: %q %v", i, body, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if _, body, err := send(t, tr, ctx, "POST", addr, "/p", "x"); err != nil || body != "POST /p x" {
		t.Fatalf("POST: %q %v", body, err)
	}
	if n := conns.Load(); n != 4 {
		t.Fatalf("%d connections for 4 one-exchange connections", n)
	}
}

// TestStrayBytes: bytes a peer sends after a response (a second response
// nobody asked for, a body after a HEAD answer) are never taken for the
// next request's answer: the connection is dropped.
func TestStrayBytes(t *testing.T) {
	addr, conns := peer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if r.Method == http.MethodHead {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
				time.Sleep(10 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
			time.Sleep(10 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
		}
	})
	tr := newTransport(t, Config{})
	ctx := context.Background()
	for i := range 3 {
		if _, body, err := send(t, tr, ctx, "GET", addr, "/", ""); err != nil || body != "first" {
			t.Fatalf("GET %d: %q %v", i, body, err)
		}
		time.Sleep(30 * time.Millisecond) // the stray response arrives
	}
	if _, _, err := send(t, tr, ctx, "HEAD", addr, "/", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if _, body, err := send(t, tr, ctx, "GET", addr, "/", ""); err != nil || body != "first" {
		t.Fatalf("GET after HEAD: %q %v", body, err)
	}
	if n := conns.Load(); n != 5 {
		t.Fatalf("%d connections, want 5 (none reused after stray bytes)", n)
	}
}

// TestIdleReaped: connections idle for IdleTimeout are closed by the
// transport itself, not only when next used.
func TestIdleReaped(t *testing.T) {
	addr, _ := peer(t, keepAlive(false))
	tr := newTransport(t, Config{IdleTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	for range 2 {
		if _, _, err := send(t, tr, ctx, "GET", addr, "/", ""); err != nil {
			t.Fatal(err)
		}
		if n := tr.Idle(addr); n != 1 {
			t.Fatalf("%d idle connections after an exchange, want 1", n)
		}
		deadline := time.Now().Add(5 * time.Second)
		for tr.Idle(addr) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("an idle connection outlived IdleTimeout")
			}
			time.Sleep(5 * time.Millisecond)
		}
		tr.mu.Lock()
		_, kept := tr.idle[addr]
		tr.mu.Unlock()
		if kept {
			t.Fatal("an address without connections is still in the pool map")
		}
	}
}

// TestBodyReadError: the request body's read error comes back as it was.
func TestBodyReadError(t *testing.T) {
	addr, _ := peer(t, keepAlive(false))
	tr := newTransport(t, Config{})
	errMine := errors.New("framing rejected")
	r, _ := http.NewRequest("POST", "http://"+addr+"/", io.MultiReader(strings.NewReader("ab"), errReader{errMine}))
	r.ContentLength = 10
	if _, err := tr.RoundTrip(r); !errors.Is(err, errMine) {
		t.Fatalf("got %v, want the body's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestPOSTNotSentTwice: a POST whose reused connection fails is not sent
// again: the error is the caller's to judge.
func TestPOSTNotSentTwice(t *testing.T) {
	var got atomic.Int64
	addr, _ := peer(t, func(c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			got.Add(1)
			if i == 1 {
				return // the second request is read, then the connection dies
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	tr := newTransport(t, Config{})
	if _, _, err := send(t, tr, context.Background(), "POST", addr, "/", "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := send(t, tr, context.Background(), "POST", addr, "/", "b"); err == nil {
		t.Fatal("a POST whose connection died got an answer")
	}
	if n := got.Load(); n != 2 {
		t.Fatalf("the peer got %d requests, want 2", n)
	}
}

// TestContextCuts: the request's context ends the wait for the head, and
// the connection is not pooled.
func TestContextCuts(t *testing.T) {
	// The peer never answers and never closes while the test runs: only
	// the context can end the wait.
	silent := make(chan struct{})
	addr, _ := peer(t, func(c net.Conn, br *bufio.Reader) {
		http.ReadRequest(br)
		<-silent
	})
	t.Cleanup(func() { close(silent) })
	tr := newTransport(t, Config{})
	cause := errors.New("per-try timeout")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	_, _, err := send(t, tr, ctx, "GET", addr, "/", "")
	if !errors.Is(err, cause) {
		t.Fatalf("got %v, want the context's cause", err)
	}
	if n := tr.Idle(addr); n != 0 {
		t.Fatal("a cut connection was pooled")
	}
}

// TestResponseHeaderTimeout: a peer silent past the timeout gives a
// net.Error whose Timeout is true.
func TestResponseHeaderTimeout(t *testing.T) {
	addr, _ := peer(t, func(c net.Conn, br *bufio.Reader) {
		http.ReadRequest(br)
		time.Sleep(5 * time.Second)
	})
	tr := newTransport(t, Config{ResponseHeaderTimeout: 50 * time.Millisecond})
	_, _, err := send(t, tr, context.Background(), "GET", addr, "/", "")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
}

// TestBodyEnd: a body closed before its end closes its connection; one
// read to its end, with trailers, goes back to the pool; a response with
// Connection: close does not.
func TestBodyEnd(t *testing.T) {
	addr, conns := peer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch r.URL.Path {
			case "/chunked":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n")
			case "/close":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc")
				return
			case "/head":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
			default:
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
			}
		}
	})
	tr := newTransport(t, Config{})
	r, _ := http.NewRequest("GET", "http://"+addr+"/chunked", nil)
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "abc" || resp.Trailer.Get("X-T") != "v" || tr.Idle(addr) != 1 {
		t.Fatalf("chunked: %q, trailer %v, %d idle", b, resp.Trailer, tr.Idle(addr))
	}
	r, _ = http.NewRequest("HEAD", "http://"+addr+"/head", nil)
	if resp, err = tr.RoundTrip(r); err != nil || resp.ContentLength != 99 || tr.Idle(addr) != 1 {
		t.Fatalf("HEAD: %v, %d idle", err, tr.Idle(addr))
	}
	r, _ = http.NewRequest("GET", "http://"+addr+"/partial", nil)
	resp, err = tr.RoundTrip(r)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a 103: %v", err)
	}
	resp.Body.Read(make([]byte, 2))
	resp.Body.Close()
	if n := tr.Idle(addr); n != 0 {
		t.Fatalf("a connection with unread body bytes was pooled (%d idle)", n)
	}
	if _, body, err := send(t, tr, context.Background(), "GET", addr, "/close", ""); err != nil || body != "c" || tr.Idle(addr) != 0 {
		t.Fatalf("Connection: close: %q %v, %d idle", body, err, tr.Idle(addr))
	}
	// One connection for chunked, HEAD and the abandoned body; one for
	// the close.
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// FuzzRoundTrip answers a request with arbitrary bytes: the client never
// panics, whatever the framing, and its pool stays within its bound.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		tr := New(Config{MaxIdlePerAddr: 1, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			c, s := net.Pipe()
			go func() {
				defer s.Close()
				if _, err := http.ReadRequest(bufio.NewReader(s)); err != nil {
					return
				}
				s.Write(answer)
			}()
			return c, nil
		}})
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, "GET", "http://peer/", nil)
		resp, err := tr.RoundTrip(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n := tr.Idle("peer"); n > 1 {
			t.Fatalf("%d idle connections", n)
		}
	})
}
