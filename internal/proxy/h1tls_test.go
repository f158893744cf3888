package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// dialTLSWire opens an HTTP/1.1 TLS connection to the HTTPS setup's port
// for the server name sni.
func dialTLSWire(t *testing.T, s *httpsSetup, sni string) *wire {
	t.Helper()
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port),
		&tls.Config{RootCAs: s.ca.pool, ServerName: sni, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &wire{t: t, c: c, br: bufio.NewReader(c)}
}

// fastTLSConns counts the port's fast-path connections that are TLS.
func fastTLSConns(e *Engine, port int32) int {
	e.mu.Lock()
	ps := e.ports[port]
	e.mu.Unlock()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for h := range ps.h1 {
		if h.tc != nil {
			n++
		}
	}
	return n
}

// TestFastPathTLS: an HTTPS connection whose ALPN chose HTTP/1.1 is served
// by the fast path, and a request the fast path leaves to net/http (a
// target in absolute form) hands the connection over with the requests
// already decrypted and buffered behind it, which net/http then serves.
func TestFastPathTLS(t *testing.T) {
	s := newHTTPSSetup(t, true)
	w := dialTLSWire(t, s, "svc-a.example.on.aws")
	w.send("GET /one HTTP/1.1\r\nHost: svc-a.example.on.aws\r\n\r\n")
	if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "a" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	if n := fastTLSConns(s.e, s.port); n != 1 {
		t.Fatalf("%d TLS connections on the fast path, want 1", n)
	}
	if got := s.a.last().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("x-forwarded-proto %q, want https", got)
	}

	// Three requests in one write: the second makes the hand-off, the
	// third is in the fast path's buffer when it does.
	w.send(fmt.Sprintf("GET /two HTTP/1.1\r\nHost: svc-a.example.on.aws\r\n\r\n"+
		"GET https://svc-a.example.on.aws:%d/abs?q=1 HTTP/1.1\r\nHost: svc-a.example.on.aws\r\n\r\n"+
		"GET /after HTTP/1.1\r\nHost: svc-a.example.on.aws\r\n\r\n", s.port))
	for _, want := range []string{"/two", "/abs", "/after"} {
		resp, body := w.read("GET")
		if resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Seen-Path") != want {
			t.Fatalf("request for %s: %d %q, target saw %q", want, resp.StatusCode, body, resp.Header.Get("X-Seen-Path"))
		}
	}
	if got := s.a.last().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("after the hand-off: x-forwarded-proto %q, want https", got)
	}
	waitFor(t, "the connection off the fast path", func() bool { return fastTLSConns(s.e, s.port) == 0 })

	// The hand-off keeps the framing guard: a smuggling head buffered
	// behind the request that hands over never reaches the target
	// (net/http's background read meets the rejection while the first
	// request is served, which may cut that one too).
	w = dialTLSWire(t, s, "svc-a.example.on.aws")
	w.send(fmt.Sprintf("GET https://svc-a.example.on.aws:%d/abs HTTP/1.1\r\nHost: svc-a.example.on.aws\r\n\r\n"+
		"POST /smuggle HTTP/1.1\r\nHost: svc-a.example.on.aws\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", s.port))
	for {
		resp, err := http.ReadResponse(w.br, nil)
		if err != nil {
			break
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			break
		}
	}
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	for _, r := range s.a.reqs {
		if r.URL.Path == "/smuggle" {
			t.Error("the smuggled request reached the target")
		}
	}
}

// TestFastPathTLSLinger: an answer the fast path gives before reading a
// request body (421 to a host of another service) reaches the client
// whole, followed by close_notify rather than a reset, however much of
// the body the client still sends.
func TestFastPathTLSLinger(t *testing.T) {
	s := newHTTPSSetup(t, true)
	w := dialTLSWire(t, s, "svc-a.example.on.aws")
	w.send("POST /x HTTP/1.1\r\nHost: svc-b.example.on.aws\r\nContent-Length: 1000000\r\n\r\n")
	go func() {
		chunk := strings.Repeat("x", 16<<10)
		for i := 0; i < 16; i++ {
			if _, err := io.WriteString(w.c, chunk); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(w.br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusMisdirectedRequest || !resp.Close {
		t.Fatalf("%d close=%v %q %v, want a whole 421 and Connection: close", resp.StatusCode, resp.Close, body, err)
	}
	if _, err := w.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("after the answer: %v, want EOF (close_notify)", err)
	}
	if s.b.count() != 0 {
		t.Error("the request reached the other service")
	}
}

// TestHandOffClearsWriteDeadline: after a hand-off, net/http writes with
// no deadline of its own, so the fast path's last write deadline must
// not remain: an answer streamed for longer than the idle timeout after
// the hand-off arrives whole, in plain text and over TLS (where a write
// timeout would break the record stream for good).
func TestHandOffClearsWriteDeadline(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			target := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					// A byte every 250 ms for 1.5 s: past the fast path's
					// write deadline (the service's idle timeout, 1 s, and
					// an eighth), never idle for as long.
					for range 6 {
						io.WriteString(w, "x")
						w.(http.Flusher).Flush()
						time.Sleep(250 * time.Millisecond)
					}
				}
				io.WriteString(w, "ok")
			}))
			port := freePort(t)
			proto, scheme := model.ProtocolHTTP, "http"
			if secure {
				proto, scheme = model.ProtocolHTTPS, "https"
			}
			svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", proto, port, defaultRule(fwd(wtg{"tg", 1}))))
			svc.IdleTimeoutSeconds = 1
			ca := newTestCA(t)
			if secure {
				svc.Certificate = ca.issue(t, "svc-1.example.on.aws")
			}
			e := newEngine(t, Config{})
			mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target.Listener.Addr().String())))
			var w *wire
			if secure {
				w = dialTLSWire(t, &httpsSetup{port: port, ca: ca}, "svc-1.example.on.aws")
			} else {
				w = dialWire(t, port)
			}
			w.send("GET /one HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n")
			if resp, body := w.read("GET"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("first request: %d %q", resp.StatusCode, body)
			}
			// Absolute form: handed over to net/http.
			w.send(fmt.Sprintf("GET %s://svc-1.example.on.aws:%d/slow HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n", scheme, port))
			resp, err := http.ReadResponse(w.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("after the hand-off: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "xxxxxxok" {
				t.Fatalf("answer streamed after the hand-off: %q, %v", body, err)
			}
		})
	}
}

// recordingConn keeps what is read from it.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// recordTypes lists the content types of the TLS records in b.
func recordTypes(b []byte) []byte {
	var types []byte
	for len(b) >= 5 {
		n := int(b[3])<<8 | int(b[4])
		types = append(types, b[0])
		if len(b) < 5+n {
			break
		}
		b = b[5+n:]
	}
	return types
}

// TestFastPathTLSCloseNotify: a TLS connection the fast path closes after
// a whole answer (here HTTP/1.0, whose body ends with the connection)
// ends with close_notify, by which a client can tell a whole body from a
// cut one. TLS 1.2, whose alerts are records of their own type.
func TestFastPathTLSCloseNotify(t *testing.T) {
	forEachPath(t, func(t *testing.T, fast bool) {
		target := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "streamed")
			w.(http.Flusher).Flush() // no Content-Length
		}))
		port := freePort(t)
		svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTPS, port, defaultRule(fwd(wtg{"tg", 1}))))
		ca := newTestCA(t)
		svc.Certificate = ca.issue(t, "svc-1.example.on.aws")
		e := newEngine(t, Config{})
		e.h1fast = fast
		mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target.Listener.Addr().String())))
		raw, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		rc := &recordingConn{Conn: raw}
		c := tls.Client(rc, &tls.Config{RootCAs: ca.pool, ServerName: "svc-1.example.on.aws",
			NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12})
		io.WriteString(c, "GET /x HTTP/1.0\r\nHost: svc-1.example.on.aws\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "streamed" {
			t.Fatalf("body %q, %v", body, err)
		}
		rc.mu.Lock()
		types := recordTypes(rc.got.Bytes())
		rc.mu.Unlock()
		if len(types) == 0 || types[len(types)-1] != 21 { // alert
			t.Errorf("the connection ended without close_notify (record types %v)", types)
		}
	})
}

// BenchmarkGatewayHTTPS1 is BenchmarkGatewayHTTP1 over an HTTPS listener
// (TLS 1.3, HTTP/1.1 by ALPN): the fast path and the net/http path.
func BenchmarkGatewayHTTPS1(b *testing.B) {
	for _, fast := range []bool{true, false} {
		name := "nethttp"
		if fast {
			name = "fast"
		}
		b.Run(name, func(b *testing.B) {
			target := rawBackend(b)
			port := freePort(b)
			ca := newTestCA(b)
			svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTPS, port, defaultRule(fwd(wtg{"tg", 1}))))
			svc.Certificate = ca.issue(b, "svc-1.example.on.aws")
			e := newEngine(b, Config{})
			e.h1fast = fast
			mustApply(b, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target)))
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port),
					&tls.Config{RootCAs: ca.pool, ServerName: "svc-1.example.on.aws", NextProtos: []string{"http/1.1"}})
				if err != nil {
					b.Error(err)
					return
				}
				defer tc.Close()
				c := &rawClient{c: tc, req: []byte(rawGet), in: rawReader{c: tc, b: make([]byte, 16<<10)}}
				for pb.Next() {
					if err := c.roundTrip(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
