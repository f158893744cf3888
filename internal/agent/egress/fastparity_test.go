package egress

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The fast path answers as the net/http path does. Each test sends the
// same request through both: a '%' in the target ("/x%41") leaves a
// request to net/http's parser.

// rawHead writes req (if any) on c and returns the response head as read
// (up to the empty line, or with the read error).
func rawHead(t *testing.T, c net.Conn, br *bufio.Reader, req string) string {
	t.Helper()
	if req != "" {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String() + "<err: " + err.Error() + ">"
		}
		if line == "\r\n" {
			return b.String()
		}
	}
}

// TestFastPathConnectionListsContentLength: a client's "Connection:
// Content-Length" does not drop Content-Length from the head sent on
// while the body follows, which would make the body a second request
// (request smuggling).
func TestFastPathConnectionListsContentLength(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n"
	req := "POST /front HTTP/1.1\r\nHost: svc\r\nConnection: Content-Length\r\nContent-Length: " +
		strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := rawHead(t, c, bufio.NewReader(c), req)
	if !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("client got:\n%s", head)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if p == "GET /smuggled" {
			t.Fatalf("endpoint served a smuggled request: %q", paths)
		}
	}
	if len(paths) != 1 || paths[0] != "POST /front" {
		t.Fatalf("endpoint saw %q", paths)
	}
}

// TestFastPathNoSmugglingAcrossClients: the same request cannot make the
// endpoint's answer to a smuggled request reach the next client on the
// pooled endpoint connection.
func TestFastPathNoSmugglingAcrossClients(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/smuggled" {
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "SMUGGLED")
			return
		}
		io.WriteString(w, "ok:"+r.URL.Path)
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	for _, tc := range []struct{ name, target string }{{"net/http path", "/fr%6Fnt"}, {"fast path", "/front"}} {
		t.Run(tc.name, func(t *testing.T) {
			smuggled := "GET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n"
			req := "POST " + tc.target + " HTTP/1.1\r\nHost: svc\r\nConnection: Content-Length\r\nContent-Length: " +
				strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rawHead(t, c, bufio.NewReader(c), req)
			time.Sleep(20 * time.Millisecond)
			r := do(t, newClient(t), "GET", "http://"+addr+"/victim", "")
			if r.body != "ok:/victim" {
				t.Fatalf("victim got %q", r.body)
			}
			time.Sleep(400 * time.Millisecond)
		})
	}
}

// TestFastPathResponseConnectionListsContentLength: an endpoint's
// "Connection: Content-Length" does not leave the client a response
// without framing.
func TestFastPathResponseConnectionListsContentLength(t *testing.T) {
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok", nil)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	for _, target := range []string{"/x%41", "/x"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := rawHead(t, c, bufio.NewReader(c), "GET "+target+" HTTP/1.1\r\nHost: svc\r\n\r\n")
		c.Close()
		framed := strings.Contains(head, "Content-Length:") || strings.Contains(head, "Transfer-Encoding: chunked") ||
			strings.Contains(head, "Connection: close")
		if !framed {
			t.Errorf("%s: response to a kept-alive HTTP/1.1 request has no framing:\n%s", target, head)
		}
	}
}

// TestFastPathConnectionListsIDs: "Connection: traceparent" with a valid
// traceparent, or "Connection: x-request-id" with an x-request-id, is
// answered (it once crashed the connection's goroutine), and no
// MaxConnections slot is lost.
func TestFastPathConnectionListsIDs(t *testing.T) {
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	pol := httpPolicy()
	pol.Breaker = BreakerPolicy{MaxConnections: 2, MaxPendingRequests: 1}
	addr := listen(t, p, "svc", pol)
	for _, h := range []string{
		"Connection: traceparent\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n",
		"Connection: x-request-id\r\nX-Request-Id: abc\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := rawHead(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: svc\r\n"+h+"\r\n")
		c.Close()
		if !strings.HasPrefix(head, "HTTP/1.1 200") {
			t.Errorf("%q: got %q", h, head)
		}
	}
	// Were the two slots lost, this request would wait for one forever.
	c := newClient(t)
	c.Timeout = 2 * time.Second
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("plain request after the panics: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("plain request after the panics: %d", resp.StatusCode)
	}
}

// blackhole is a loopback address whose connects hang: a listener with a
// full accept queue that never accepts.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestFastPathDialWithinRequestTimeout: the per-request timeout bounds a
// connect: 504 at the timeout, not 503 after DialTimeout.
func TestFastPathDialWithinRequestTimeout(t *testing.T) {
	bh := blackhole(t)
	if c, err := net.DialTimeout("tcp", bh, 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("cannot make a blackhole here")
	}
	p := newProxy(t, Config{DialTimeout: 3 * time.Second})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: bh}})
	pol := httpPolicy()
	pol.PerRequestTimeout = 500 * time.Millisecond
	addr := listen(t, p, "svc", pol)
	for _, target := range []string{"/x%41", "/x"} {
		if r := do(t, newClient(t), "GET", "http://"+addr+target, ""); r.status != 504 {
			t.Errorf("%s: %d %q, want 504", target, r.status, r.body)
		}
	}
}

// TestFastPathRecordClone: a record an observer keeps (rec.Clone()) keeps
// its trace and request IDs after the connection's next request.
func TestFastPathRecordClone(t *testing.T) {
	heads := make(chan string, 4)
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", heads)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	do(t, c, "GET", "http://"+addr+"/", "")
	first := <-heads
	do(t, c, "GET", "http://"+addr+"/", "")
	<-heads
	r := rec.waitRequests(t, 2)[0]
	if !strings.Contains(first, "X-Request-Id: "+r.RequestID+"\r\n") || !strings.Contains(first, "Traceparent: "+r.TraceParent+"\r\n") {
		t.Fatalf("first record kept request ID %q, traceparent %q; the endpoint got:\n%s", r.RequestID, r.TraceParent, first)
	}
}

// TestFastPathHalfClosedPost: a client that half-closes after its POST
// gets the answer, even when the endpoint takes longer than watchAfter:
// only requests without a body are watched.
func TestFastPathHalfClosedPost(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, "ok")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	for _, target := range []string{"/x%41", "/x"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST "+target+" HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabc")
		c.(*net.TCPConn).CloseWrite()
		head := rawHead(t, c, bufio.NewReader(c), "")
		c.Close()
		if !strings.HasPrefix(head, "HTTP/1.1 200") {
			t.Errorf("%s: got %q", target, head)
		}
	}
}

// TestFastPathConnectionListedRewrite: with Host, X-Forwarded-Proto and
// X-Forwarded-For named in Connection, Host is kept, x-forwarded-proto
// added and the listed x-forwarded-for dropped, as net/http's path does.
func TestFastPathConnectionListedRewrite(t *testing.T) {
	heads := make(chan string, 4)
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", heads)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	for _, target := range []string{"/x%41", "/x"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		rawHead(t, c, bufio.NewReader(c), "GET "+target+" HTTP/1.1\r\nHost: svc\r\n"+
			"Connection: host, x-forwarded-proto, x-forwarded-for\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
		c.Close()
		got := <-heads
		for _, want := range []string{"Host: svc\r\n", "X-Forwarded-Proto: http\r\n", "X-Forwarded-For: 127.0.0.1\r\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: endpoint head lacks %q:\n%s", target, want, got)
			}
		}
	}
}

// TestFastPathGrpcStatusHeader: a grpc-status in an HTTP/1 response head
// is recorded as on the net/http path.
func TestFastPathGrpcStatusHeader(t *testing.T) {
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nGrpc-Status: 14\r\nContent-Length: 0\r\n\r\n", nil)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	do(t, c, "GET", "http://"+addr+"/x%41", "")
	do(t, c, "GET", "http://"+addr+"/x", "")
	recs := rec.waitRequests(t, 2)
	if recs[0].GRPCStatus != recs[1].GRPCStatus {
		t.Fatalf("GRPCStatus net/http %d, fast %d", recs[0].GRPCStatus, recs[1].GRPCStatus)
	}
}

// hungEndpoint reads requests and never answers; got receives a value per
// connection once a first read returned.
func hungEndpoint(t *testing.T, got chan<- struct{}) string {
	ln := newLoopbackListener(t)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				if _, err := c.Read(buf); err == nil {
					got <- struct{}{}
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFastPathCloseCutsWaitingRequest: Close(ctx) cuts a request that
// waits on its endpoint once ctx ends, as it does on the net/http path.
func TestFastPathCloseCutsWaitingRequest(t *testing.T) {
	for _, tc := range []struct{ name, req string }{
		{"net/http POST", "POST /x%41 HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabc"},
		{"fast POST", "POST /x HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabc"},
		{"net/http pipelined GET", "GET /x%41 HTTP/1.1\r\nHost: svc\r\n\r\nGET /y HTTP/1.1\r\nHost: svc\r\n\r\n"},
		{"fast pipelined GET", "GET /x HTTP/1.1\r\nHost: svc\r\n\r\nGET /y HTTP/1.1\r\nHost: svc\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan struct{}, 4)
			ep := hungEndpoint(t, got)
			p := New(Config{})
			p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
			addr := listen(t, p, "svc", httpPolicy())
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.req)
			<-got
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Close(ctx) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close still waits 10 s after its context ended: the request on its endpoint is never cut")
			}
		})
	}
}

// TestFastPathGRPCWebAnswer: a gRPC-Web call (HTTP/1.1,
// content-type application/grpc-web+proto) whose endpoint is down gets
// the same generated answer on both paths.
func TestFastPathGRPCWebAnswer(t *testing.T) {
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: deadAddr(t)}})
	addr := listen(t, p, "svc", httpPolicy())
	var got []string
	for _, target := range []string{"/pkg.Svc/M%41", "/pkg.Svc/M"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := rawHead(t, c, bufio.NewReader(c), "POST "+target+" HTTP/1.1\r\nHost: svc\r\n"+
			"Content-Type: application/grpc-web+proto\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00")
		c.Close()
		line, _, _ := strings.Cut(head, "\r\n")
		gs := ""
		for _, l := range strings.Split(head, "\r\n") {
			if strings.HasPrefix(l, "Grpc-Status:") {
				gs = l
			}
		}
		got = append(got, line+" "+gs)
	}
	if got[0] != got[1] {
		t.Fatalf("net/http path answered %q, fast path %q", got[0], got[1])
	}
}

// TestFastPathGrpcStatusTrailer: a grpc-status in the chunked
// trailers of an HTTP/1 response is recorded as on the net/http path.
func TestFastPathGrpcStatusTrailer(t *testing.T) {
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Type: application/grpc-web+proto\r\nTrailer: Grpc-Status\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nGrpc-Status: 14\r\n\r\n", nil)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	do(t, c, "POST", "http://"+addr+"/x%41", "abc", "Content-Type", "application/grpc-web+proto")
	do(t, c, "POST", "http://"+addr+"/x", "abc", "Content-Type", "application/grpc-web+proto")
	recs := rec.waitRequests(t, 2)
	if recs[0].GRPCStatus != recs[1].GRPCStatus {
		t.Fatalf("GRPCStatus net/http %d, fast %d", recs[0].GRPCStatus, recs[1].GRPCStatus)
	}
}

// TestFastPathPoolReuseAfterDeadline: an idle endpoint connection is
// reused once the previous request's per-request timeout has passed, as on
// the net/http path: the timeout bounds a request, not the connection.
func TestFastPathPoolReuseAfterDeadline(t *testing.T) {
	for _, target := range []string{"/x%41", "/x"} {
		t.Run(target, func(t *testing.T) {
			var conns atomic.Int64
			b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("ok"))
			}))
			b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			b.Start()
			defer b.Close()
			p := newProxy(t, Config{})
			p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: b.Listener.Addr().String()}})
			pol := httpPolicy()
			pol.PerRequestTimeout = 200 * time.Millisecond
			addr := listen(t, p, "svc", pol)
			c := newClient(t)
			do(t, c, "GET", "http://"+addr+target, "")
			time.Sleep(300 * time.Millisecond) // past the first request's deadline
			do(t, c, "GET", "http://"+addr+target, "")
			if n := conns.Load(); n != 1 {
				t.Errorf("%d endpoint connections for two sequential requests, want 1", n)
			}
		})
	}
}

// TestFastPathEmptyHost: an empty Host is refused as on the net/http
// path.
func TestFastPathEmptyHost(t *testing.T) {
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	var got []string
	for _, target := range []string{"/x%41", "/x"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := rawHead(t, c, bufio.NewReader(c), "GET "+target+" HTTP/1.1\r\nHost: \r\n\r\n")
		c.Close()
		line, _, _ := strings.Cut(head, "\r\n")
		got = append(got, line)
	}
	if got[0] != got[1] {
		t.Fatalf("empty Host: net/http path %q, fast path %q", got[0], got[1])
	}
}

// TestFastPathStuckClientHoldsNothing: a client that pipelines requests and
// stops reading leaves the proxy blocked writing an answer to it; it holds
// no request (MaxRequests) and no connection slot (MaxConnections) then,
// as on the net/http path, whose answer's end is flushed after both are
// given back.
func TestFastPathStuckClientHoldsNothing(t *testing.T) {
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil)
	for _, target := range []string{"/x%41", "/x"} {
		t.Run(target, func(t *testing.T) {
			p := newProxy(t, Config{})
			p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
			pol := httpPolicy()
			pol.Breaker = BreakerPolicy{MaxConnections: 4, MaxPendingRequests: 4, MaxRequests: 4}
			addr := listen(t, p, "svc", pol)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.(*net.TCPConn).SetReadBuffer(4096)
			req := strings.Repeat("GET "+target+" HTTP/1.1\r\nHost: svc\r\n\r\n", 1000)
			go func() {
				for i := 0; i < 1000; i++ {
					if _, err := c.Write([]byte(req)); err != nil {
						return
					}
				}
			}()
			// Wait until the proxy stops making progress: it is blocked on
			// the client.
			s := svcOf(p, "svc")
			prev := uint64(0)
			for {
				time.Sleep(300 * time.Millisecond)
				n := s.requests.Load()
				if n > 0 && n == prev {
					break
				}
				prev = n
			}
			st, _ := p.Stats("svc")
			if st.ActiveRequests != 0 {
				t.Errorf("a connection blocked writing to its client holds %d active requests (after %d requests)", st.ActiveRequests, st.Requests)
			}
			s.slots.mu.Lock()
			busy := s.slots.busy
			s.slots.mu.Unlock()
			if busy != 0 {
				t.Errorf("a connection blocked writing to its client holds %d MaxConnections slots", busy)
			}
		})
	}
}
