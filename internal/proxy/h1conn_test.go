package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/rawio"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// wire is a raw client connection to an engine port.
type wire struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialWire(t *testing.T, port int32) *wire {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &wire{t: t, c: c, br: bufio.NewReader(c)}
}

func (w *wire) send(s string) {
	w.t.Helper()
	if _, err := io.WriteString(w.c, s); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// read reads one response to a request of method and its whole body.
func (w *wire) read(method string) (*http.Response, string) {
	w.t.Helper()
	resp, err := http.ReadResponse(w.br, &http.Request{Method: method})
	if err != nil {
		w.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// closed reports whether the gateway closed the connection (EOF next).
func (w *wire) closed() bool {
	_ = w.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := w.br.ReadByte()
	return err == io.EOF
}

// oneService serves svc-1.example.on.aws on a fresh port, forwarding
// everything to target.
func oneService(t *testing.T, cfg Config, fast bool, target string) (*Engine, int32) {
	port := freePort(t)
	e := newEngine(t, cfg)
	e.h1fast = fast
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", target)))
	return e, port
}

const hostLine = "Host: svc-1.example.on.aws\r\n"

func TestFastPathPipelined(t *testing.T) {
	a := newBackend(t, "a")
	_, port := oneService(t, Config{}, true, a.addr())
	w := dialWire(t, port)
	w.send("GET /1 HTTP/1.1\r\n" + hostLine + "\r\n" +
		"POST /2 HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /4 HTTP/1.1\r\n" + hostLine + "\r\n")
	for i, want := range []struct{ path, body string }{{"/1", "0"}, {"/2", "5"}, {"/3", "3"}, {"/4", "0"}} {
		resp, body := w.read("GET")
		if resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Seen-Path") != want.path || resp.Header.Get("X-Seen-Body") != want.body {
			t.Fatalf("response %d: %d %q path %q body %q, want %s %s", i, resp.StatusCode, body,
				resp.Header.Get("X-Seen-Path"), resp.Header.Get("X-Seen-Body"), want.path, want.body)
		}
	}
}

// trailerBackend reads the body and its trailer X-Req-Sum and answers a
// chunked body (three flushes) with the trailer X-Sum.
func trailerBackend(t *testing.T) string {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Got", fmt.Sprintf("%d %s %s %s", len(b), r.Trailer.Get("X-Req-Sum"), strings.Join(r.TransferEncoding, ","), r.Header.Get("X-Sent")))
		for _, p := range []string{"one,", "two,", "three"} {
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "s-"+strconv.Itoa(len(b)))
	}))
	return srv.Listener.Addr().String()
}

func TestFastPathChunkedAndTrailers(t *testing.T) {
	_, port := oneService(t, Config{}, true, trailerBackend(t))
	w := dialWire(t, port)
	w.send("POST /c HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\nTrailer: X-Req-Sum\r\nX-Sent: yes\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Req-Sum: abc\r\n\r\n")
	resp, body := w.read("POST")
	if resp.StatusCode != 200 || body != "one,two,three" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Got"); got != "11 abc chunked yes" {
		t.Errorf("target got %q, want body 11 bytes, trailer abc, chunked", got)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("response transfer encoding %v", resp.TransferEncoding)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "s-11" {
		t.Errorf("response trailer X-Sum %q", got)
	}
	// The connection goes on.
	w.send("POST /c HTTP/1.1\r\n" + hostLine + "Content-Length: 2\r\n\r\nab")
	if resp, body := w.read("POST"); resp.StatusCode != 200 || body != "one,two,three" || resp.Header.Get("X-Got") != "2" {
		t.Fatalf("second request: %d %q %q", resp.StatusCode, body, resp.Header.Get("X-Got"))
	}

	// A body breaking the chunk framing after the head went out: 400 and
	// the connection closes.
	w = dialWire(t, port)
	w.send("POST /c HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n")
	if resp, _ := w.read("POST"); resp.StatusCode != 400 {
		t.Fatalf("broken chunk framing: %d", resp.StatusCode)
	}
	if !w.closed() {
		t.Error("connection open after a broken body")
	}
}

func TestFastPathExpectContinue(t *testing.T) {
	a := newBackend(t, "a")
	_, port := oneService(t, Config{}, true, a.addr())
	w := dialWire(t, port)
	w.send("PUT /up HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := w.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q %v, want 100 Continue", line, err)
	}
	if blank, _ := w.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue not followed by an empty line: %q", blank)
	}
	w.send("hello")
	if resp, body := w.read("PUT"); resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Seen-Body") != "5" {
		t.Fatalf("%d %q body %s", resp.StatusCode, body, resp.Header.Get("X-Seen-Body"))
	}
	// An unknown host is answered at once, without 100, and the
	// connection closes (the body was never asked for).
	w.send("PUT /up HTTP/1.1\r\nHost: nobody.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if resp, _ := w.read("PUT"); resp.StatusCode != 404 || !resp.Close {
		t.Fatalf("unknown host: %d close=%v", resp.StatusCode, resp.Close)
	}
	// Another expectation: 417, as net/http answers.
	w = dialWire(t, port)
	w.send("GET / HTTP/1.1\r\n" + hostLine + "Expect: teapot\r\n\r\n")
	if resp, _ := w.read("GET"); resp.StatusCode != 417 {
		t.Fatalf("Expect: teapot: %d", resp.StatusCode)
	}
}

func TestFastPathNoBodyResponses(t *testing.T) {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}))
	_, port := oneService(t, Config{}, true, srv.Listener.Addr().String())
	w := dialWire(t, port)
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"HEAD", "/", 200, ""},
		{"GET", "/204", 204, ""},
		{"GET", "/304", 304, ""},
		{"GET", "/", 200, "hello"},
		{"HEAD", "/204", 204, ""},
		{"GET", "/", 200, "hello"},
	} {
		w.send(tt.method + " " + tt.path + " HTTP/1.1\r\n" + hostLine + "\r\n")
		resp, body := w.read(tt.method)
		if resp.StatusCode != tt.status || body != tt.body {
			t.Fatalf("%s %s: %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
		if tt.method == "HEAD" && tt.status == 200 && resp.ContentLength != 5 {
			t.Errorf("HEAD: content length %d, want the target's 5", resp.ContentLength)
		}
	}
}

func TestFastPathConnectionClose(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port := oneService(t, Config{}, true, srv.Listener.Addr().String())

	// The client asks to close.
	w := dialWire(t, port)
	w.send("GET / HTTP/1.1\r\n" + hostLine + "Connection: close\r\n\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Fatalf("%d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if !w.closed() {
		t.Fatal("connection open after Connection: close")
	}

	// The target closes: the client's connection goes on, and the next
	// request needs a new target connection.
	w = dialWire(t, port)
	before := conns.Load()
	for i, path := range []string{"/close", "/", "/"} {
		w.send("GET " + path + " HTTP/1.1\r\n" + hostLine + "\r\n")
		resp, body := w.read("GET")
		if resp.StatusCode != 200 || body != "ok" || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
		if resp.Header.Get("Connection") != "" {
			t.Errorf("request %d: Connection %q relayed", i, resp.Header.Get("Connection"))
		}
	}
	if got := conns.Load() - before; got > 2 {
		t.Errorf("%d target connections for three requests, want at most 2", got)
	}
}

func TestFastPathHTTP10(t *testing.T) {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush() // chunked toward the gateway
			io.WriteString(w, "part2")
			return
		}
		io.WriteString(w, "ok")
	}))
	_, port := oneService(t, Config{}, true, srv.Listener.Addr().String())

	w := dialWire(t, port)
	w.send("GET / HTTP/1.0\r\n" + hostLine + "\r\n")
	resp, body := w.read("GET")
	if resp.Proto != "HTTP/1.0" || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if !w.closed() {
		t.Fatal("HTTP/1.0 connection without keep-alive left open")
	}

	w = dialWire(t, port)
	for range 2 {
		w.send("GET / HTTP/1.0\r\n" + hostLine + "Connection: keep-alive\r\n\r\n")
		resp, body := w.read("GET")
		if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Connection") != "keep-alive" {
			t.Fatalf("keep-alive: %d %q Connection %q", resp.StatusCode, body, resp.Header.Get("Connection"))
		}
	}
	// A chunked answer reaches an HTTP/1.0 client as plain data ended by
	// the close.
	w.send("GET /stream HTTP/1.0\r\n" + hostLine + "Connection: keep-alive\r\n\r\n")
	resp, body = w.read("GET")
	if resp.StatusCode != 200 || body != "part1,part2" || len(resp.TransferEncoding) != 0 {
		t.Fatalf("stream: %d %q %v", resp.StatusCode, body, resp.TransferEncoding)
	}
	if !w.closed() {
		t.Fatal("connection open after a close-delimited answer")
	}
}

// scriptedTarget accepts connections and answers each request with
// answer(n), n counting requests over all connections; after answering it
// closes the connection when closeAfter says so (after a pause, so that
// the gateway has pooled it).
func scriptedTarget(t *testing.T, answer func(n int) string, closeAfter func(n int) bool) (addr string, conns *atomic.Int64) {
	var n atomic.Int32
	return testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			i := int(n.Add(1))
			if _, err := io.WriteString(c, answer(i)); err != nil {
				return
			}
			if closeAfter != nil && closeAfter(i) {
				time.Sleep(20 * time.Millisecond)
				return
			}
		}
	})
}

// TestFastPathStaleTargetConnection: a target that closes its keep-alive
// connections between requests (without saying so) costs the client
// nothing for requests without a body.
func TestFastPathStaleTargetConnection(t *testing.T) {
	addr, conns := scriptedTarget(t, func(int) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}, func(int) bool { return true })
	_, port := oneService(t, Config{}, true, addr)
	w := dialWire(t, port)
	for i := range 5 {
		w.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
		if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond) // the target closes meanwhile
	}
	if got := conns.Load(); got < 5 {
		t.Errorf("%d target connections for 5 requests on closing connections", got)
	}
}

// TestFastPathStaleProbe: a pooled connection that the target has closed
// is probed and left unused, so that even a POST with a body, which is
// never sent twice, gets through.
func TestFastPathStaleProbe(t *testing.T) {
	addr, conns := scriptedTarget(t, func(int) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}, func(int) bool { return true })
	_, port := oneService(t, Config{}, true, addr)
	w := dialWire(t, port)
	for i := range 3 {
		if i > 0 {
			time.Sleep(50 * time.Millisecond) // the target's close arrives
		}
		w.send("POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 4\r\n\r\nbody")
		if resp, body := w.read("POST"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("%d target connections for 3 requests on closing connections", got)
	}
}

// TestFastPathStrayResponse: a response the target sends after the one
// asked for is never taken for the next request's answer.
func TestFastPathStrayResponse(t *testing.T) {
	addr, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
			time.Sleep(10 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
		}
	})
	_, port := oneService(t, Config{}, true, addr)
	w := dialWire(t, port)
	for i := range 3 {
		w.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
		if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "first" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(30 * time.Millisecond) // the stray response arrives
	}
}

func TestFastPathReadUntilClose(t *testing.T) {
	addr, _ := scriptedTarget(t, func(int) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
	}, func(int) bool { return true })
	_, port := oneService(t, Config{}, true, addr)
	w := dialWire(t, port)
	w.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
	resp, body := w.read("GET")
	if resp.StatusCode != 200 || body != "until the end" || len(resp.TransferEncoding) != 1 {
		t.Fatalf("HTTP/1.1: %d %q %v, want the body chunked", resp.StatusCode, body, resp.TransferEncoding)
	}
	w.send("GET / HTTP/1.0\r\n" + hostLine + "\r\n")
	resp, body = w.read("GET")
	if resp.StatusCode != 200 || body != "until the end" || !w.closed() {
		t.Fatalf("HTTP/1.0: %d %q", resp.StatusCode, body)
	}
}

func TestFastPathLargeBodies(t *testing.T) {
	const size = 8 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	sum := sha256.Sum256(payload)
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.Write(payload)
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	rec := &recorder{}
	_, port := oneService(t, Config{Observer: rec}, true, srv.Listener.Addr().String())
	c := httpClient(t, port)
	url := fmt.Sprintf("http://svc-1.example.on.aws:%d/big", port)
	want := fmt.Sprintf("%d %x", size, sum)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if chunked {
			body = io.MultiReader(body) // unknown length: sent chunked
		}
		req, _ := http.NewRequest("POST", url, body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Fatalf("upload (chunked %v): target saw %q, want %q", chunked, got, want)
		}
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	waitFor(t, "records", func() bool { return len(rec.all()) == 3 })
	recs := rec.all()
	if recs[0].BytesReceived != size || recs[1].BytesReceived != size || recs[2].BytesSent != size {
		t.Errorf("record byte counts: %d %d %d", recs[0].BytesReceived, recs[1].BytesReceived, recs[2].BytesSent)
	}
}

func TestFastPathSlowloris(t *testing.T) {
	a := newBackend(t, "a")
	_, port := oneService(t, Config{ReadHeaderTimeout: 300 * time.Millisecond}, true, a.addr())
	for _, first := range []bool{true, false} {
		w := dialWire(t, port)
		if !first {
			w.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
			w.read("GET")
		}
		start := time.Now()
		var werr error
		go func() {
			for _, b := range []byte("GET / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nX-Slow: " + strings.Repeat("x", 40)) {
				if _, werr = w.c.Write([]byte{b}); werr != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if !w.closed() {
			t.Fatalf("first request %v: slow head not cut", first)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("first request %v: slow head cut after %v, want about 300 ms", first, d)
		}
	}
}

// TestFastPathHandOff: what the fast path leaves to net/http still works
// on the same connection: a request target in absolute form, and a
// listener forwarding to an HTTPS target group.
func TestFastPathHandOff(t *testing.T) {
	a := newBackend(t, "a")
	tlsB := &backend{name: "tls"}
	tlsB.srv = newTLSBackend(t, http.HandlerFunc(tlsB.serve))
	port := freePort(t)
	e := newEngine(t, Config{})
	mustApply(t, e, testSnapshot(1, []snapshot.Service{
		testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1})))),
		testService("svc-2", "svc-2.example.on.aws", listener("l-2", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg-tls", 1})))),
	}, testTG("tg", model.ProtocolHTTP, "", a.addr()), testTG("tg-tls", model.ProtocolHTTPS, "", tlsB.addr())))
	w := dialWire(t, port)
	w.send("GET /fast HTTP/1.1\r\n" + hostLine + "\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "a" {
		t.Fatalf("fast: %d %q", resp.StatusCode, body)
	}
	w.send("GET /tls HTTP/1.1\r\nHost: svc-2.example.on.aws\r\n\r\nGET /after HTTP/1.1\r\n" + hostLine + "\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "tls" {
		t.Fatalf("HTTPS group: %d %q", resp.StatusCode, body)
	}
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Seen-Path") != "/after" {
		t.Fatalf("after the hand-off: %d %q", resp.StatusCode, body)
	}
	w = dialWire(t, port)
	w.send(fmt.Sprintf("GET http://svc-1.example.on.aws:%d/abs?q=1 HTTP/1.1\r\n%s\r\n", port, hostLine))
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Seen-Path") != "/abs" {
		t.Fatalf("absolute form: %d %q %q", resp.StatusCode, body, resp.Header.Get("X-Seen-Path"))
	}
}

// TestFastPathDrain: Close closes idle fast-path connections at once and
// lets an active request finish, telling its client to close.
func TestFastPathDrain(t *testing.T) {
	release := make(chan struct{})
	slow, started := newSlowBackend(t, release)
	e, port := oneService(t, Config{}, true, slow)
	idle := dialWire(t, port)
	busy := dialWire(t, port)
	busy.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
	<-started
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if !idle.closed() {
		t.Fatal("idle connection not closed by the drain")
	}
	close(release)
	resp, body := busy.read("GET")
	if resp.StatusCode != 200 || body != "slow done" || !resp.Close {
		t.Fatalf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	wg.Wait()
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// TestFastPathNoGoroutineLeak: once the engine is closed, nothing the
// fast path started is left: connection goroutines, target connections,
// pool timers.
func TestFastPathNoGoroutineLeak(t *testing.T) {
	a := newBackend(t, "a")
	before := runtime.NumGoroutine()
	func() {
		port := freePort(t)
		e := New(Config{Logger: testLogger(t), IdleTimeout: time.Second})
		mustApply(t, e, testSnapshot(1,
			[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
			testTG("tg", model.ProtocolHTTP, "", a.addr())))
		c := httpClient(t, port)
		for range 5 {
			if resp, _ := get(t, c, fmt.Sprintf("http://svc-1.example.on.aws:%d/", port)); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		w := dialWire(t, port)
		w.send("GET /x HTTP/1.1\r\n" + hostLine + "\r\n")
		w.read("GET")
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		c.Transport.(*http.Transport).CloseIdleConnections()
		a.srv.CloseClientConnections()
	}()
	waitForWithin(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestFastPathSlowUpload: ResponseHeaderTimeout counts from the end of the
// request, not from its start: an upload slower than it succeeds.
func TestFastPathSlowUpload(t *testing.T) {
	a := newBackend(t, "a")
	_, port := oneService(t, Config{ResponseHeaderTimeout: 300 * time.Millisecond}, true, a.addr())
	w := dialWire(t, port)
	w.send("POST /slow HTTP/1.1\r\n" + hostLine + "Content-Length: 6\r\n\r\n")
	for _, b := range "abcdef" {
		time.Sleep(120 * time.Millisecond)
		w.send(string(b))
	}
	if resp, body := w.read("POST"); resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Seen-Body") != "6" {
		t.Fatalf("%d %q body %s", resp.StatusCode, body, resp.Header.Get("X-Seen-Body"))
	}
}

// TestFastPathRawConnections: the fast path reads and writes both its
// client connections and its target connections with raw system calls
// (internal/rawio), and a pooled raw connection is still probed
// (TestFastPathStrayResponse).
func TestFastPathRawConnections(t *testing.T) {
	a := newBackend(t, "a")
	e, port := oneService(t, Config{}, true, a.addr())
	w := dialWire(t, port)
	w.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "a" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	var pooled []*upConn
	waitFor(t, "the target connection back in its pool", func() bool {
		pooled = pooled[:0]
		e.mu.Lock()
		for _, u := range e.upstreams {
			u.mu.Lock()
			for _, p := range u.pools {
				p.mu.Lock()
				pooled = append(pooled, p.conns...)
				p.mu.Unlock()
			}
			u.mu.Unlock()
		}
		e.mu.Unlock()
		return len(pooled) == 1
	})
	if _, ok := pooled[0].c.(*rawio.Conn); !ok {
		t.Errorf("the target connection is a %T, not a *rawio.Conn", pooled[0].c)
	}
	e.mu.Lock()
	ps := e.ports[port]
	e.mu.Unlock()
	ps.mu.Lock()
	var clients []net.Conn
	for h := range ps.h1 {
		clients = append(clients, h.cc.Conn)
	}
	ps.mu.Unlock()
	if len(clients) != 1 {
		t.Fatalf("%d client connections on the fast path, want 1", len(clients))
	}
	if _, ok := clients[0].(*rawio.Conn); !ok {
		t.Errorf("the client connection is a %T, not a *rawio.Conn", clients[0])
	}
}
