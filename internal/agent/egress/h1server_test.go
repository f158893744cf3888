package egress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wire is a raw client connection to a listener.
type wire struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &wire{t: t, c: c, br: bufio.NewReader(c)}
}

func (w *wire) send(s string) {
	w.t.Helper()
	if _, err := io.WriteString(w.c, s); err != nil {
		w.t.Fatal(err)
	}
}

// read reads one response to a request of method, body included.
func (w *wire) read(method string) (*http.Response, string) {
	w.t.Helper()
	resp, err := http.ReadResponse(w.br, &http.Request{Method: method})
	if err != nil {
		w.t.Fatalf("reading the response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the server closed the connection.
func (w *wire) closed() bool {
	_, err := w.br.ReadByte()
	return err == io.EOF
}

// echoBackend answers with the method, the path, the Host and the body.
func echoBackend(t testing.TB) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("stream") != "" {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush() // no Content-Length
		}
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, r.Host, b)
	})
}

func h1Proxy(t *testing.T, b *backend) string {
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	return listen(t, p, "svc", httpPolicy())
}

// TestH1ServerPipelined: requests sent back to back on one connection are
// answered in order.
func TestH1ServerPipelined(t *testing.T) {
	w := dialWire(t, h1Proxy(t, echoBackend(t)))
	w.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyzGET /3 HTTP/1.1\r\nHost: c\r\n\r\n")
	for _, want := range []string{"GET /1 a ", "POST /2 b xyz", "GET /3 c "} {
		if resp, body := w.read("GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
}

// TestH1ServerExpectContinue: 100 Continue comes before the body is
// read; an expectation other than 100-continue gets 417.
func TestH1ServerExpectContinue(t *testing.T) {
	w := dialWire(t, h1Proxy(t, echoBackend(t)))
	w.send("PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	line, err := w.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q %v, want 100 Continue", line, err)
	}
	w.br.ReadString('\n')
	w.send("data")
	if resp, body := w.read("PUT"); resp.StatusCode != 200 || body != "PUT /up a data" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	w.send("PUT /up HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 4\r\n\r\ndata")
	if resp, _ := w.read("PUT"); resp.StatusCode != http.StatusExpectationFailed || !w.closed() {
		t.Fatalf("got %d, want 417 and the connection closed", resp.StatusCode)
	}
}

// TestH1ServerBadRequests: heads http.Server refuses are refused the same
// way, and the connection closes.
func TestH1ServerBadRequests(t *testing.T) {
	b := echoBackend(t)
	addr := h1Proxy(t, b)
	for _, tc := range []struct{ name, req, status string }{
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "400 Bad Request: missing required Host header"},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400 Bad Request: malformed Host header"},
		{"bad request line", "GET /\r\n\r\n", "400 Bad Request"},
		{"HTTP/2.0 in a request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505 HTTP Version Not Supported"},
		{"bad field name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", "400 Bad Request: invalid header name"},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "400 Bad Request"},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", maxHeadBytes) + "\r\n\r\n", "431 Request Header Fields Too Large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dialWire(t, addr)
			w.send(tc.req)
			resp, body := w.read("GET")
			if want := tc.status; resp.Status != want || body != want || !w.closed() {
				t.Fatalf("got %q %q, want %q and the connection closed", resp.Status, body, want)
			}
		})
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("%d bad requests reached the endpoint", n)
	}
}

// TestH1ServerHTTP10: an HTTP/1.0 client keeps its connection only when
// it asks to and the body has a length; a body of unknown length ends
// with the connection.
func TestH1ServerHTTP10(t *testing.T) {
	b := echoBackend(t)
	addr := h1Proxy(t, b)
	w := dialWire(t, addr)
	// Without Host, the endpoint's address is the Host sent on.
	w.send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body := w.read("GET")
	if resp.StatusCode != 200 || body != "GET /k "+b.Listener.Addr().String()+" " || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("keep-alive: got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	w.send("GET /s?stream=1 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
	if resp, body = w.read("GET"); resp.StatusCode != 200 || body != "aGET /s h " || len(resp.TransferEncoding) != 0 || !w.closed() {
		t.Fatalf("unknown length: got %d %q %v, want it delimited by the close", resp.StatusCode, body, resp.TransferEncoding)
	}
	w = dialWire(t, addr)
	w.send("GET /c HTTP/1.0\r\nHost: h\r\n\r\n")
	if resp, body = w.read("GET"); resp.StatusCode != 200 || body != "GET /c h " || !w.closed() {
		t.Fatalf("no keep-alive: got %d %q, want the connection closed", resp.StatusCode, body)
	}
}

// TestH1ServerChunkedRequest: a chunked request body reaches the endpoint
// whole, and a response of unknown length goes out chunked.
func TestH1ServerChunkedRequest(t *testing.T) {
	w := dialWire(t, h1Proxy(t, echoBackend(t)))
	w.send("POST /c?stream=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	resp, body := w.read("POST")
	if resp.StatusCode != 200 || body != "aPOST /c a abcde" || len(resp.TransferEncoding) != 1 {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.TransferEncoding)
	}
}

// TestH1ServerHandOffH2C: a connection that opens with the HTTP/2 preface
// is served by HTTP/2.
func TestH1ServerHandOffH2C(t *testing.T) {
	addr := h1Proxy(t, echoBackend(t))
	c := newH2CClient(t)
	resp, err := c.Get("http://" + addr + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasPrefix(string(b), "GET /h2 ") {
		t.Fatalf("got %s %q", resp.Proto, b)
	}
}

// TestH1ServerIdleTimeout: a connection silent for the idle timeout is
// closed.
func TestH1ServerIdleTimeout(t *testing.T) {
	b := echoBackend(t)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	pol := httpPolicy()
	pol.IdleTimeout = 200 * time.Millisecond
	w := dialWire(t, listen(t, p, "svc", pol))
	w.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	w.read("GET")
	// The wire's 10 s deadline ends the read if the server never closes.
	if !w.closed() {
		t.Fatal("the idle connection was not closed")
	}
}

// FuzzH1Server sends arbitrary bytes as a client connection's input: the
// proxy never crashes and the listener serves the next connection.
func FuzzH1Server(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: y\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	b := echoBackend(f)
	p := New(Config{})
	defer p.Close(context.Background())
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	pol := httpPolicy()
	pol.IdleTimeout = 200 * time.Millisecond
	pol.PerRequestTimeout = time.Second
	addr, err := p.Listen("svc", "127.0.0.1:0", pol)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(in)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		io.Copy(io.Discard, c)
		w := dialWire(t, addr.String())
		w.send("GET /after HTTP/1.1\r\nHost: z\r\n\r\n")
		if resp, body := w.read("GET"); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /after z") {
			t.Fatalf("after the input: got %d %q", resp.StatusCode, body)
		}
	})
}

// TestH1ServerClientGone: a client that closes its connection while its
// bodiless request waits on the endpoint ends the endpoint's exchange
// (its request's context is cancelled), and the record says so.
func TestH1ServerClientGone(t *testing.T) {
	cancelled := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	w := dialWire(t, listen(t, p, "svc", httpPolicy()))
	w.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(watchAfter + 100*time.Millisecond)
	w.c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint's request outlived its client")
	}
	if r := rec.waitRequests(t, 1)[0]; r.Failure != FailureClientClosed {
		t.Fatalf("record %+v, want FailureClientClosed", r)
	}
}

// TestH1ServerWatchPipelined: a slow request followed at once by another
// on the same connection is not taken for a client that left: both are
// answered, in order.
func TestH1ServerWatchPipelined(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(watchAfter + 200*time.Millisecond)
		}
		io.WriteString(w, r.URL.Path)
	})
	w := dialWire(t, h1Proxy(t, b))
	w.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if resp, body := w.read("GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
	// A slow request alone, then one more: the watch ended cleanly.
	w.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "/slow" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	w.send("GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "/after" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// TestH1WriterFraming: trailers declared as one comma-separated list are
// all sent, and a field name no client could parse is dropped.
func TestH1WriterFraming(t *testing.T) {
	var out strings.Builder
	c := &h1ServerConn{srv: &h1Server{}, bw: bufio.NewWriter(&out)}
	c.w.c, c.w.header = c, make(http.Header)
	r := httptestRequest(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	c.w.reset(r)
	w := &c.w
	w.Header().Set("Trailer", "X-A, X-B")
	w.Header()["Bad Name"] = []string{"v"}
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("hi"))
	w.Header().Set("X-A", "1")
	w.Header().Set("X-B", "2")
	if !w.finish() {
		t.Fatal("finish failed")
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out.String())), r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "hi" || resp.Trailer.Get("X-A") != "1" || resp.Trailer.Get("X-B") != "2" {
		t.Fatalf("body %q, trailer %v", body, resp.Trailer)
	}
	if strings.Contains(out.String(), "Bad Name") {
		t.Fatalf("an invalid field name was written:\n%s", out.String())
	}
}

func httptestRequest(t *testing.T, head string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestH1ServerLingerCounted: what a client sends after an answer that
// closes its connection is drained, lingering, and still counted in the
// connection's bytes in.
func TestH1ServerLingerCounted(t *testing.T) {
	b := echoBackend(t)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	w := dialWire(t, listen(t, p, "svc", httpPolicy()))
	head := "PUT /up HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 100000\r\n\r\n"
	w.send(head)
	if resp, _ := w.read("PUT"); resp.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("got %d, want 417", resp.StatusCode)
	}
	body := strings.Repeat("x", 100000)
	w.send(body)
	w.c.(*net.TCPConn).CloseWrite()
	if !w.closed() {
		t.Fatal("the connection stayed open")
	}
	if got, want := connClose(t, rec).BytesIn, int64(len(head)+len(body)); got != want {
		t.Fatalf("bytes in %d, want %d (head and the drained body)", got, want)
	}
}
