package egress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
