package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// TestFullDuplexH1: through the HTTP/1 fast path, a target that echoes
// the body as it reads gets each piece while the echo of the one before
// is relayed (testnet.LockstepEcho).
func TestFullDuplexH1(t *testing.T) {
	_, port := oneService(t, Config{}, true, testnet.ServeEcho(t, nil))
	tr := &http.Transport{DialContext: dialTo(port)}
	t.Cleanup(tr.CloseIdleConnections)
	for _, known := range []bool{true, false} {
		testnet.LockstepEcho(t, tr, "http://svc-1.example.on.aws/echo", known)
	}
}

// TestFullDuplexH2 does the same over HTTP/2, on the direct path and on
// ServeHTTP's.
func TestFullDuplexH2(t *testing.T) {
	target := testnet.ServeEcho(t, nil)
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprint("direct=", direct), func(t *testing.T) {
			tr := h2cTransport(t, h2Service(t, direct, target, Config{}))
			for _, known := range []bool{true, false} {
				testnet.LockstepEcho(t, tr, "http://svc-1.example.on.aws/echo", known)
			}
		})
	}
}

// earlyTarget answers every request at once, whole, without reading its
// body, then reads (and drops) what comes until the connection ends,
// which it reports.
func earlyTarget(t *testing.T, ended chan<- struct{}) string {
	addr, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		defer func() { ended <- struct{}{} }()
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, br)
	})
	return addr
}

// slowBodyService is svc-1 on target with an idle timeout far longer than
// the tests wait: what happens must not wait for it.
func slowBodyService(t *testing.T, target string, fast, direct bool) (*Engine, int32) {
	port := freePort(t)
	e := newEngine(t, Config{})
	e.h1fast, e.h2direct = fast, direct
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
	svc.IdleTimeoutSeconds = 60
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target)))
	return e, port
}

func waitEnded(t *testing.T, ended <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal(what)
	}
}

// TestDuplexEarlyAnswerH1: a target that answers whole before the body
// has come, while the client is slow to send it: the answer reaches the
// client at once (not when the idle timeout ends the body), the body is
// cut and the target connection closed, not pooled, and the client
// connection is closed after the answer (the rest of its body is unread).
func TestDuplexEarlyAnswerH1(t *testing.T) {
	ended := make(chan struct{}, 1)
	e, port := slowBodyService(t, earlyTarget(t, ended), true, true)
	w := dialWire(t, port)
	w.send("POST /up HTTP/1.1\r\n" + hostLine + "Content-Length: 100000\r\n\r\n" + string(make([]byte, 20000)))
	// Far less than the idle timeout, which would end the body's wait.
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, body := w.read("POST"); resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Fatalf("answer %d %q (Connection: close %v), want 200 ok and the close announced", resp.StatusCode, body, resp.Close)
	}
	waitEnded(t, ended, "the target connection was kept after its body was cut")
	if n := pooledConns(e); n != 0 {
		t.Errorf("%d target connections pooled after a body cut short, want 0", n)
	}
	if !w.closed() {
		t.Error("the client connection stays open with its body unread")
	}
}

// TestDuplexEarlyAnswerH2 is the same over HTTP/2 on the direct path: the
// stream ends with the answer, the target connection is closed.
func TestDuplexEarlyAnswerH2(t *testing.T) {
	ended := make(chan struct{}, 1)
	e, port := slowBodyService(t, earlyTarget(t, ended), true, true)
	tr := h2cTransport(t, port)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() { _, _ = pw.Write(make([]byte, 20000)) }() // then nothing
	req, _ := http.NewRequest("POST", "http://svc-1.example.on.aws/up", pr)
	got := make(chan string, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			got <- err.Error()
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprint(resp.StatusCode, " ", string(b), " ", err)
	}()
	select {
	case s := <-got:
		if s != "200 ok <nil>" {
			t.Fatalf("answer %q, want 200 ok", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no whole answer while the client is slow to send its body")
	}
	waitEnded(t, ended, "the target connection was kept after its body was cut")
	if n := pooledConns(e); n != 0 {
		t.Errorf("%d target connections pooled after a body cut short, want 0", n)
	}
}

// TestDuplexClientGoneH1: a client that goes away in the middle of its
// body while the echo streams back: the target connection is closed and
// the request recorded as the client's failure.
func TestDuplexClientGoneH1(t *testing.T) {
	ended := make(chan struct{}, 1)
	rec := &recorder{}
	port := freePort(t)
	e := newEngine(t, Config{Observer: rec})
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", testnet.ServeEcho(t, ended))))
	w := dialWire(t, port)
	w.send("POST /echo HTTP/1.1\r\n" + hostLine + "Content-Length: 10000000\r\n\r\n" + string(make([]byte, 1<<20)))
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("echo's head: %v %v", resp, err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatalf("the echo of what was sent: %v", err)
	}
	_ = w.c.Close()
	waitEnded(t, ended, "the target connection stayed open after the client went away")
	waitFor(t, "the record", func() bool { return len(rec.all()) == 1 })
	if r := rec.all()[0]; r.FailureReason != errClientGone.reason || r.BytesReceived != 1<<20 {
		t.Errorf("record: failure %q, %d bytes received; want %q, %d", r.FailureReason, r.BytesReceived, errClientGone.reason, 1<<20)
	}
}

// TestDuplexAnswerPanicJoinsBody: a panic on the answer's side while the
// body's goroutine runs costs that connection only; the goroutine is
// joined before the connection's state goes back to the pool, so the
// next connection served with that state neither shares it with the
// goroutine nor takes the old body's outcome.
func TestDuplexAnswerPanicJoinsBody(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the next connection takes the same state
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.URL.Path == "/trailer" {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n")
			_, _ = io.Copy(io.Discard, br)
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	port := freePort(t)
	e := newEngine(t, Config{})
	var mu sync.Mutex
	armed := true
	e.h1conns.New = func() any {
		h := newH1conn().(*h1conn)
		h.Relay.Trailer = func([]byte) {
			mu.Lock()
			defer mu.Unlock()
			if armed {
				armed = false
				panic("injected: a bug on the answer's side")
			}
		}
		return h
	}
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
	svc.IdleTimeoutSeconds = 60
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target)))
	w := dialWire(t, port)
	w.send("POST /trailer HTTP/1.1\r\n" + hostLine + "Content-Length: 100000\r\n\r\n" + string(make([]byte, 20000)))
	if !w.closed() {
		t.Fatal("the connection whose answer panicked is still open")
	}
	time.Sleep(100 * time.Millisecond) // serveFast's deferred release
	w2 := dialWire(t, port)
	w2.send("GET /plain HTTP/1.1\r\n" + hostLine + "\r\n")
	resp, err := http.ReadResponse(w2.br, nil)
	if err != nil {
		t.Fatalf("the next connection's GET: %v (it took the old body's outcome)", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "ok" {
		t.Fatalf("the next connection's GET: %q %v", b, err)
	}
}

// TestDuplexEarlyRefusalSaysClose: an answer that comes while the body is
// still on its way (here a 413 at once) is followed by the close of the
// client connection, which its head announces (Connection: close).
func TestDuplexEarlyRefusalSaysClose(t *testing.T) {
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	_, port := oneService(t, Config{}, true, target)
	for i := range 5 {
		w := dialWire(t, port)
		w.send("POST /up HTTP/1.1\r\n" + hostLine + "Content-Length: 8000000\r\n\r\n")
		go func() { _, _ = io.WriteString(w.c, strings.Repeat("x", 8000000)) }()
		resp, _ := w.read("POST")
		if resp.StatusCode != 413 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if !resp.Close {
			t.Fatalf("try %d: a 413 whose connection is then closed, without Connection: close", i)
		}
		if !w.closed() {
			t.Fatal("the client connection stays open with its body unread")
		}
	}
}
