package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// TestAnswersMatchNetHTTP sends the same requests through the fast path
// and through net/http: status, body and the headers that matter must be
// the same.
func TestAnswersMatchNetHTTP(t *testing.T) {
	dead := freePort(t)
	a := newBackend(t, "a")
	requests := []string{
		"GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: unknown.example\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: unknown.example\r\n\r\n",
		"GET /f204 HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /f404 HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /f500 HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /f599 HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /f304 HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /f103 HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /dead HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET /none HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET /%zz HTTP/1.1\r\n" + hostLine + "\r\n",
		"GET / HTTP/1.1\r\n" + hostLine + "X: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\n" + hostLine + "Expect: teapot\r\n\r\n",
		"GET / HTTP/1.1\r\n" + hostLine + "Connection: close\r\n\r\n",
		"GET /x HTTP/1.1\r\n" + hostLine + "Content-Type: application/grpc\r\n\r\n",
		"CONNECT svc-1.example.on.aws:80 HTTP/1.1\r\n" + hostLine + "\r\n",
		// (A body breaking the chunk framing after its head went out is
		// answered 400 by the fast path; net/http answers it 400 or closes,
		// depending on whether the target's answer wins the race.)
	}
	type answer struct {
		status  int
		proto   string
		body    string
		headers string
		closed  bool
	}
	answers := map[bool][]answer{}
	forEachPath(t, func(t *testing.T, fast bool) {
		port := freePort(t)
		rules := []snapshot.Rule{
			matchRule("r-204", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/f204")}}}, fixed(204)),
			matchRule("r-404", 2, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/f404")}}}, fixed(404)),
			matchRule("r-500", 3, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/f500")}}}, fixed(500)),
			matchRule("r-599", 4, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/f599")}}}, fixed(599)),
			matchRule("r-304", 7, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/f304")}}}, fixed(304)),
			matchRule("r-103", 8, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/f103")}}}, fixed(103)),
			matchRule("r-dead", 5, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/dead")}}}, fwd(wtg{"tg-dead", 1})),
			matchRule("r-none", 6, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/none")}}}, fwd(wtg{"tg-none", 1})),
			defaultRule(fwd(wtg{"tg", 1})),
		}
		e := newEngine(t, Config{})
		e.h1fast = fast
		mustApply(t, e, testSnapshot(1,
			[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))},
			testTG("tg", model.ProtocolHTTP, "", a.addr()),
			testTG("tg-dead", model.ProtocolHTTP, "", fmt.Sprintf("127.0.0.1:%d", dead)),
			testTG("tg-none", model.ProtocolHTTP, "")))
		for _, r := range requests {
			w := dialWire(t, port)
			w.send(r)
			method, _, _ := strings.Cut(r, " ")
			resp, err := http.ReadResponse(w.br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("%q: %v", r, err)
			}
			body, _ := io.ReadAll(resp.Body)
			var hs []string
			for _, k := range []string{"Content-Type", "Content-Length", "X-Content-Type-Options", "Connection", "X-Backend"} {
				hs = append(hs, k+"="+strings.Join(resp.Header.Values(k), ","))
			}
			ans := answer{resp.StatusCode, resp.Proto, string(body), strings.Join(hs, " "), resp.Close}
			answers[fast] = append(answers[fast], ans)
		}
	})
	if len(answers[true]) != len(requests) || len(answers[false]) != len(requests) {
		return // a path failed above
	}
	for i, r := range requests {
		if f, n := answers[true][i], answers[false][i]; f != n {
			t.Errorf("%q:\n fast    %+v\n nethttp %+v", r, f, n)
		}
	}
}

// TestFastPathStalledPeers: a client that stops reading a large answer,
// or a target that stops reading a large upload, holds the connection for
// the service's idle timeout, not for ever.
func TestFastPathStalledPeers(t *testing.T) {
	release := make(chan struct{})
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			select { // never reads the body
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(64<<20))
		chunk := make([]byte, 1<<20)
		for range 64 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for its handlers
	rec := &recorder{}
	port := freePort(t)
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
	svc.IdleTimeoutSeconds = 1
	e := newEngine(t, Config{Observer: rec})
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", srv.Listener.Addr().String())))

	// The client never reads.
	w := dialWire(t, port)
	w.send("GET / HTTP/1.1\r\n" + hostLine + "\r\n")
	waitForWithin(t, 10*time.Second, "the record of the stalled download", func() bool { return len(rec.all()) == 1 })
	if r := rec.all()[0]; r.FailureReason != errClientGone.reason || r.Status != 200 {
		t.Errorf("stalled client: status %d reason %q", r.Status, r.FailureReason)
	}

	// The target never reads.
	w = dialWire(t, port)
	w.send("POST / HTTP/1.1\r\n" + hostLine + "Content-Length: " + strconv.Itoa(64<<20) + "\r\n\r\n")
	go func() {
		chunk := make([]byte, 1<<20)
		for range 64 {
			if _, err := w.c.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp, _ := w.read("POST")
	if resp.StatusCode != 504 || !resp.Close {
		t.Errorf("stalled target: %d close=%v, want 504 and close", resp.StatusCode, resp.Close)
	}
}

func waitForWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFastPathTargetAnswers: what the fast path makes of unusual answers
// from a target.
func TestFastPathTargetAnswers(t *testing.T) {
	answers := map[string]string{
		"/early":    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/big":      "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 100<<10) + "\r\nContent-Length: 2\r\n\r\nok",
		"/fold":     "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
		"/noreason": "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
		"/lf":       "HTTP/1.1 200 OK\nContent-Length: 2\nX-Lf: yes\n\nok",
		"/twocl":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"/gzip":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
		"/short":    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok",
		"/hop":      "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nok",
	}
	addr, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, answers[req.URL.Path])
			if req.URL.Path == "/short" {
				return
			}
		}
	})
	_, port := oneService(t, Config{}, true, addr)
	for _, tt := range []struct {
		path   string
		status int
		body   string
		check  func(*http.Response) bool
	}{
		{"/early", 200, "ok", nil},
		{"/big", 200, "ok", func(r *http.Response) bool { return len(r.Header.Get("X-Big")) == 100<<10 }},
		{"/fold", 502, errTargetConnect.body, nil},
		{"/noreason", 200, "ok", func(r *http.Response) bool { return r.Status == "200 OK" }},
		{"/lf", 200, "ok", func(r *http.Response) bool { return r.Header.Get("X-Lf") == "yes" }},
		{"/twocl", 502, errTargetConnect.body, nil},
		{"/gzip", 502, errTargetConnect.body, nil},
		{"/hop", 200, "ok", func(r *http.Response) bool {
			return r.Header.Get("X-Secret") == "" && r.Header.Get("Keep-Alive") == "" && r.Header.Get("Proxy-Authenticate") == ""
		}},
		{"/big", 200, "ok", nil},
	} {
		w := dialWire(t, port)
		w.send("GET " + tt.path + " HTTP/1.1\r\n" + hostLine + "\r\n")
		resp, body := w.read("GET")
		if resp.StatusCode != tt.status || body != tt.body || tt.check != nil && !tt.check(resp) {
			t.Errorf("%s: %s %q, want %d %q", tt.path, resp.Status, body, tt.status, tt.body)
		}
	}
	// A body cut short after the head went out: the client sees the
	// truncation (the connection is closed before the announced length).
	w := dialWire(t, port)
	w.send("GET /short HTTP/1.1\r\n" + hostLine + "\r\n")
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("truncated body read without error")
	}
}

// TestFastPathEarlyAnswerNotPooled: on the HTTP/1 loop too, a target
// connection whose request body did not all go (the target answered
// early and stopped reading) is closed after the answer, not pooled: the
// next request from another client would be read as the rest of the
// body.
func TestFastPathEarlyAnswerNotPooled(t *testing.T) {
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!")
		time.Sleep(2500 * time.Millisecond)
		_, _ = io.Copy(io.Discard, c)
	})
	port := freePort(t)
	e := newEngine(t, Config{})
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
	svc.IdleTimeoutSeconds = 1 // the body's write gives up after a second
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target)))
	w := dialWire(t, port)
	go func() {
		fmt.Fprintf(w.c, "POST /up HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nContent-Length: %d\r\n\r\n", 64<<20)
		_, _ = w.c.Write(make([]byte, 64<<20)) // more than the sockets hold
	}()
	resp, body := w.read("POST")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body != "big!" {
		t.Fatalf("%d %q, want the target's early 413", resp.StatusCode, body)
	}
	time.Sleep(50 * time.Millisecond)
	if n := pooledConns(e); n != 0 {
		t.Errorf("%d target connections pooled after a body cut short, want 0", n)
	}
}
