package egress

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/rawio"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// newCountingBackend is an HTTP/1.1 backend running h that counts the
// connections it accepts.
func newCountingBackend(t *testing.T, h http.HandlerFunc) (*backend, *atomic.Int64) {
	t.Helper()
	b := &backend{}
	var conns atomic.Int64
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	b.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b, &conns
}

// TestH1KeepAlive: sequential requests, with and without small bodies,
// share one connection to the endpoint; a response that says
// Connection: close is not reused.
func TestH1KeepAlive(t *testing.T) {
	b, conns := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(got))
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	for i := range 20 {
		method, body, want := "GET", "", "GET /x 0"
		if i%2 == 1 {
			method, body, want = "POST", strings.Repeat("b", 1000), "POST /x 1000"
		}
		if r := do(t, c, method, "http://"+addr+"/x", body); r.status != 200 || r.body != want {
			t.Fatalf("request %d: got %d %q, want %q", i, r.status, r.body, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d endpoint connections, want 1", n)
	}
	get(t, c, addr+"/?close=1")
	get(t, c, addr)
	if n := conns.Load(); n != 2 {
		t.Fatalf("after a Connection: close response: %d endpoint connections, want 2", n)
	}
}

// TestH1PoolKeepsConcurrency: after 300 concurrent requests (more than
// the 256 idle connections the pool once kept), every connection stays
// pooled, and a second wave as wide dials nothing new.
func TestH1PoolKeepsConcurrency(t *testing.T) {
	const wide = 300
	var arrived sync.WaitGroup
	var gate atomic.Pointer[chan struct{}] // closed when a wave may answer
	b, conns := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		release := *gate.Load()
		arrived.Done()
		<-release
		io.WriteString(w, "ok")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	wave := func() {
		arrived.Add(wide)
		release := make(chan struct{})
		gate.Store(&release)
		var done sync.WaitGroup
		for range wide {
			done.Add(1)
			go func() {
				defer done.Done()
				if r := get(t, c, addr); r.status != 200 {
					t.Errorf("status %d", r.status)
				}
			}()
		}
		arrived.Wait()
		close(release)
		done.Wait()
	}
	wave()
	up := svcOf(p, "svc").up.Load()
	waitFor(t, "every endpoint connection to be idle", func() bool { return up.idle(b.Listener.Addr().String()) == wide })
	wave()
	if n := conns.Load(); n != wide {
		t.Fatalf("two waves of %d concurrent requests opened %d endpoint connections, want %d", wide, n, wide)
	}
}

// rawBackend serves each connection with serve on a loopback port.
func rawBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int64) {
	return testnet.Serve(t, serve)
}

// readRequest reads one request and its body from br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, r.Body)
	return r, err
}

// TestH1StaleConnection: the endpoint closes each connection after one
// response without saying so (as one whose keep-alive timeout passed
// would). A GET on the closed pooled connection is sent again on a new
// one, unseen by the client and without a retry; a POST is not sent on
// it at all (the probe finds it closed).
func TestH1StaleConnection(t *testing.T) {
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRequest(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.Method), r.Method)
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: addr}})
	pol := httpPolicy()
	pol.Retry = RetryPolicy{NumRetries: 0}
	px := listen(t, p, "svc", pol)
	c := newClient(t)
	steps := []struct{ method, body string }{{"GET", ""}, {"GET", ""}, {"POST", ""}, {"POST", "data"}, {"GET", ""}}
	for i, s := range steps {
		if i > 0 {
			// Let the endpoint's close reach the proxy's socket.
			time.Sleep(20 * time.Millisecond)
		}
		if r := do(t, c, s.method, "http://"+px+"/", s.body); r.status != 200 || r.body != s.method {
			t.Fatalf("step %d (%s): got %d %q", i, s.method, r.status, r.body)
		}
	}
	for _, r := range rec.waitRequests(t, len(steps)) {
		if r.Retries != 0 || r.Failure != FailureNone {
			t.Fatalf("record %+v: want no retry, no failure", r)
		}
	}
	if n := conns.Load(); n < int64(len(steps)) {
		t.Fatalf("%d endpoint connections for %d one-request connections", n, len(steps))
	}
}

// TestH1Informational: 1xx responses before the final one are skipped;
// a 101 is an error.
func TestH1Informational(t *testing.T) {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			if r.URL.Path == "/upgrade" {
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+
				"HTTP/1.1 102 Processing\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal")
		}
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{Addr: addr}})
	px := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	if r := get(t, c, px); r.status != 200 || r.body != "final" || r.header.Get("X-Final") != "yes" {
		t.Fatalf("got %d %q %v", r.status, r.body, r.header)
	}
	if r := do(t, c, "GET", "http://"+px+"/upgrade", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("a 101 answer: got %d %q, want 503", r.status, r.body)
	}
}

// TestH1ChunkedTrailersAndHead: a chunked response's trailers reach the
// client, and a HEAD response's Content-Length does not make the proxy
// wait for a body; the connection serves on.
func TestH1ChunkedTrailersAndHead(t *testing.T) {
	b, conns := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "1234")
			return
		}
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "part one,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Checksum", "abc")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	px := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	for range 2 {
		resp, err := c.Get("http://" + px + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "part one,part two" || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Fatalf("got %q %v, trailer %v", body, err, resp.Trailer)
		}
		req, _ := http.NewRequest(http.MethodHead, "http://"+px+"/", nil)
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != 1234 {
			t.Fatalf("HEAD: got %d, length %d", resp.StatusCode, resp.ContentLength)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d endpoint connections, want 1", n)
	}
}

// TestH1AbandonedBodyNotReused: a client that leaves mid-body gets its
// endpoint connection closed, not pooled with unread bytes.
func TestH1AbandonedBodyNotReused(t *testing.T) {
	big := strings.Repeat("x", 32<<20) // more than socket buffers hold
	b, conns := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "small")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	px := listen(t, p, "svc", httpPolicy())
	c, err := net.Dial("tcp", px)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: svc\r\n\r\n")
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	up := svcOf(p, "svc").up.Load()
	waitFor(t, "the abandoned exchange to end", func() bool { return svcOf(p, "svc").active.Load() == 0 })
	if n := up.idle(b.Listener.Addr().String()); n != 0 {
		t.Fatal("the connection of an abandoned body went back to the pool")
	}
	if r := do(t, newClient(t), "GET", "http://"+px+"/small", ""); r.body != "small" || conns.Load() != 2 {
		t.Fatalf("got %q over %d connections", r.body, conns.Load())
	}
}

// TestH1LargeBodyUsesHTTPTransport: a large body is not written before
// the answer is read (it goes through http.Transport): an endpoint that
// answers early without reading it still gets its answer through.
func TestH1LargeBodyUsesHTTPTransport(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		io.WriteString(w, "too large")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	px := listen(t, p, "svc", httpPolicy())
	res := do(t, newClient(t), "POST", "http://"+px+"/", strings.Repeat("a", 8<<20))
	if res.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %q", res.status, res.body)
	}
}

// TestDialRaw: connections to HTTP endpoints read and write with raw
// system calls (internal/rawio); those of TCP services stay
// *net.TCPConn, which io.Copy splices.
func TestDialRaw(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	listen(t, p, "svc", httpPolicy())
	s := svcOf(p, "svc")
	pol := s.pol.Load()
	addr := b.Listener.Addr().String()
	c, err := s.dial(t.Context(), addr, pol, false, s.up.Load())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cc, ok := c.(*countedRawConn); !ok {
		t.Errorf("HTTP endpoint connection is a %T, not a *countedRawConn", c)
	} else if _, ok := cc.Conn.(*rawio.Conn); !ok {
		t.Errorf("HTTP endpoint connection wraps a %T, not a *rawio.Conn", cc.Conn)
	} else if !h1wire.CanWriteRead(c) {
		t.Error("HTTP endpoint connection hides rawio's WriteRead")
	}
	tc, err := s.dial(t.Context(), addr, pol, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	s.connCount.Add(-1)
	if _, ok := tc.(*net.TCPConn); !ok {
		t.Errorf("TCP stream endpoint connection is a %T, not a *net.TCPConn", tc)
	}
}

// TestH1HalfClosedConnection: an endpoint that answers one request per
// connection and then shuts down its side (without Connection: close),
// reading on, leaves pooled connections that look open but are done.
// Every request still gets its answer, none retried: the connection is
// found not idle before anything is sent on it (on the fast path, inside
// the write call), and the request goes on a new one.
func TestH1HalfClosedConnection(t *testing.T) {
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRequest(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.Method), r.Method)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br) // until the proxy closes it
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: addr}})
	pol := httpPolicy()
	pol.Retry = RetryPolicy{NumRetries: 0}
	px := listen(t, p, "svc", pol)
	c := newClient(t)
	steps := []struct{ method, body string }{{"GET", ""}, {"GET", ""}, {"POST", ""}, {"POST", "data"}, {"GET", ""}}
	for i, s := range steps {
		if i > 0 {
			// Let the endpoint's shutdown reach the proxy's socket.
			time.Sleep(20 * time.Millisecond)
		}
		start := time.Now()
		if r := do(t, c, s.method, "http://"+px+"/", s.body); r.status != 200 || r.body != s.method || time.Since(start) > 5*time.Second {
			t.Fatalf("step %d (%s): got %d %q after %v", i, s.method, r.status, r.body, time.Since(start))
		}
	}
	for _, r := range rec.waitRequests(t, len(steps)) {
		if r.Retries != 0 || r.Failure != FailureNone {
			t.Fatalf("record %+v: want no retry, no failure", r)
		}
	}
	if n := conns.Load(); n < int64(len(steps)) {
		t.Fatalf("%d endpoint connections for %d one-request connections", n, len(steps))
	}
}
