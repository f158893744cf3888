package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// TestCloseDrainsInFlight: Close stops accepting at once and lets a
// request in flight finish.
func TestCloseDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	slow, started := newSlowBackend(t, release)
	port := freePort(t)
	e := New(Config{Logger: testLogger(t)})
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", slow)))
	c := httpClient(t, port)
	done := make(chan error, 1)
	go func() {
		resp, body := get(t, c, fmt.Sprintf("http://svc-1.example.on.aws:%d/", port))
		if resp.StatusCode != 200 || body != "slow done" {
			done <- fmt.Errorf("%d %q", resp.StatusCode, body)
			return
		}
		done <- nil
	}()
	<-started
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- e.Close(ctx)
	}()
	waitFor(t, "listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := e.Apply(testSnapshot(2, nil)); err != ErrClosed {
		t.Errorf("apply after close: %v, want ErrClosed", err)
	}
}

// TestMaxConnectionDuration: an HTTP/1 connection older than the cap is
// closed after its next response; a passthrough connection is cut.
func TestMaxConnectionDuration(t *testing.T) {
	a := newBackend(t, "a")
	port := freePort(t)
	e := newEngine(t, Config{MaxConnectionDuration: 300 * time.Millisecond})
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", a.addr())))
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	roundTrip := func() *http.Response {
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := roundTrip(); resp.Close {
		t.Fatal("young connection asked to close")
	}
	time.Sleep(400 * time.Millisecond)
	if resp := roundTrip(); !resp.Close {
		t.Fatal("old connection not closed after its response")
	}

	// Passthrough: a silent connection is cut at the cap.
	s := newPassthroughOnly(t, Config{MaxConnectionDuration: 300 * time.Millisecond})
	tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{ServerName: "pass.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	start := time.Now()
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from a silent target")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("passthrough connection lived %v past a 300 ms cap", d)
	}
}

type passthroughOnly struct {
	port int32
	e    *Engine
}

// newPassthroughOnly serves pass.example.com by TLS passthrough to a TLS
// target that never writes application data.
func newPassthroughOnly(t *testing.T, cfg Config) *passthroughOnly {
	ca := newTestCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.tlsCert(t, "pass.example.com")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	p := &passthroughOnly{port: freePort(t)}
	svc := testService("svc-p", "svc-p.example.on.aws", listener("l-p", model.ProtocolTLSPassthrough, p.port, defaultRule(fwd(wtg{"tg-p", 1}))))
	svc.CustomDomain = "pass.example.com"
	p.e = newEngine(t, cfg)
	mustApply(t, p.e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg-p", model.ProtocolTCP, "", ln.Addr().String())))
	return p
}

// TestH2CPriorKnowledge: a plain-text HTTP listener also speaks HTTP/2
// with prior knowledge (the framing guard steps aside after the preface).
func TestH2CPriorKnowledge(t *testing.T) {
	a := newBackend(t, "a")
	port := freePort(t)
	e := newEngine(t, Config{})
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", a.addr())))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{DialContext: dialTo(port), Protocols: &p}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range 3 {
		resp, body := get(t, c, fmt.Sprintf("http://svc-1.example.on.aws:%d/x", port))
		if resp.StatusCode != 200 || body != "a" || resp.ProtoMajor != 2 {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, body)
		}
	}
	if got := a.last().Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("x-forwarded-proto %q", got)
	}
}

// TestNoGoroutineLeak serves every kind of connection, closes everything
// and checks that the goroutines the test started are gone.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s := newHTTPSSetup(t, true)
		h1 := tlsClient(t, s.port, s.ca, false, 0)
		h2 := tlsClient(t, s.port, s.ca, true, 0)
		for _, c := range []*http.Client{h1, h2} {
			if resp, _ := get(t, c, fmt.Sprintf("https://svc-a.example.on.aws:%d/", s.port)); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{RootCAs: s.ca.pool, ServerName: "pass.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: pass.example.com\r\nConnection: close\r\n\r\n")
		io.Copy(io.Discard, conn)
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		h1.Transport.(*http.Transport).CloseIdleConnections()
		h2.Transport.(*http.Transport).CloseIdleConnections()
		s.a.srv.Close()
		s.b.srv.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 { // the passthrough target's server is closed by Cleanup
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var ours []string
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "internal/proxy.") && !strings.Contains(g, "TestNoGoroutineLeak") {
					ours = append(ours, g)
				}
			}
			t.Fatalf("%d goroutines before, %d after; proxy goroutines left:\n%s", before, n, strings.Join(ours, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestH2CServerChoice: HTTP/2 clients are served by internal/h2server,
// which passes on a target's answer as it is, and with Config.GoHTTP2 by
// net/http's server, which adds a sniffed Content-Type to an answer
// without one. That difference tells which server answered.
func TestH2CServerChoice(t *testing.T) {
	target := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no Content-Type, and no sniffing here
		io.WriteString(w, "<html>hello</html>")
	}))
	for _, goHTTP2 := range []bool{false, true} {
		port := freePort(t)
		e := newEngine(t, Config{GoHTTP2: goHTTP2})
		mustApply(t, e, testSnapshot(1,
			[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
			testTG("tg", model.ProtocolHTTP, "", target.Listener.Addr().String())))
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{DialContext: dialTo(port), Protocols: &p}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		resp, body := get(t, c, fmt.Sprintf("http://svc-1.example.on.aws:%d/", port))
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || body != "<html>hello</html>" || resp.ProtoMajor != 2 {
			t.Fatalf("GoHTTP2=%v: %s %d %q", goHTTP2, resp.Proto, resp.StatusCode, body)
		}
		ct, sniffed := resp.Header["Content-Type"]
		if sniffed != goHTTP2 {
			t.Errorf("GoHTTP2=%v: Content-Type %q: the wrong HTTP/2 server answered", goHTTP2, ct)
		}
	}
}
