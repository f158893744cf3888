package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// bodySeen is a request with a body as the target parsed it.
type bodySeen struct {
	Method, URI      string
	ContentLength    int64
	TransferEncoding []string
	Body             string
	Trailer          http.Header
	Header           http.Header
}

// bodyTarget answers every request with the length of the body it read,
// and keeps what it saw by path.
func bodyTarget(t *testing.T) (addr string, seen func(path string) *bodySeen) {
	var mu sync.Mutex
	got := map[string]*bodySeen{}
	addr, _ = testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			req.Header.Del("X-Forwarded-Port") // the one field that differs between two gateways
			mu.Lock()
			got[req.URL.Path] = &bodySeen{req.Method, req.RequestURI, req.ContentLength, req.TransferEncoding, string(b), req.Trailer, req.Header}
			mu.Unlock()
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(len(b))), len(b)); err != nil {
				return
			}
		}
	})
	return addr, func(path string) *bodySeen {
		mu.Lock()
		defer mu.Unlock()
		return got[path]
	}
}

// bodyCase is a request with a body for both paths.
type bodyCase struct {
	name, method string
	body         string
	length       int64 // the request's ContentLength: -1 sends no content-length
	trailer      bool  // declares and sends a trailer
}

var bodyCases = []bodyCase{
	{"small", "POST", "hello", 5, false},
	{"small-put", "PUT", `{"a":1}`, 7, false},
	{"large", "PUT", strings.Repeat("L", 40<<10), 40 << 10, false},
	{"unknown", "POST", "no length given", -1, false},
	{"unknown-large", "PATCH", strings.Repeat("U", 100<<10), -1, false},
	{"unknown-empty", "POST", "", -1, false},
	{"trailer", "POST", "with trailer", -1, true},
	{"get", "GET", "a GET with a body", 17, false},
	{"empty", "POST", "", 0, false},
}

// bodyOutcome is what the client got and the target saw.
type bodyOutcome struct {
	Status  int
	Body    string
	Seen    *bodySeen
	BytesIn int64
	Failure string
}

func runBodies(t *testing.T, direct bool) []bodyOutcome {
	target, seen := bodyTarget(t)
	rec := &recorder{}
	port := h2Service(t, direct, target, Config{Observer: rec})
	tr := h2cTransport(t, port)
	var out []bodyOutcome
	for i, bc := range bodyCases {
		path := "/b/" + bc.name
		var body io.Reader = strings.NewReader(bc.body)
		if bc.length < 0 {
			body = io.MultiReader(body) // hides the length from the client
		}
		if bc.length == 0 && bc.body == "" {
			body = http.NoBody
		}
		req, _ := http.NewRequest(bc.method, "http://svc-1.example.on.aws"+path+"?x=1", body)
		req.ContentLength = bc.length
		if bc.length < 0 {
			req.ContentLength = -1
		}
		req.Header.Set("X-Custom", "kept")
		if bc.trailer {
			req.Trailer = http.Header{"X-Sum": {"12"}}
		}
		var o bodyOutcome
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", bc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		o.Status, o.Body, o.Seen = resp.StatusCode, string(b), seen(path)
		waitFor(t, "the record", func() bool { return len(rec.all()) == i+1 })
		last := rec.all()[i]
		o.BytesIn, o.Failure = last.BytesReceived, last.FailureReason
		out = append(out, o)
	}
	return out
}

// TestH2DirectBodies: requests with bodies (small and large, of known and
// unknown length) reach the target, and their answers the client, the
// same through the direct path as through ServeHTTP, and rightly framed.
func TestH2DirectBodies(t *testing.T) {
	direct, nethttp := runBodies(t, true), runBodies(t, false)
	for i, bc := range bodyCases {
		d, n := direct[i], nethttp[i]
		if !reflect.DeepEqual(d, n) {
			t.Errorf("%s: direct path and ServeHTTP differ:\n direct  %+v %+v\n nethttp %+v %+v", bc.name, d, d.Seen, n, n.Seen)
		}
		if d.Status != 200 || d.Seen == nil || d.Seen.Body != bc.body || d.Body != fmt.Sprint(len(bc.body)) {
			t.Errorf("%s: %d %q, target saw %+v", bc.name, d.Status, d.Body, d.Seen)
			continue
		}
		if d.BytesIn != int64(len(bc.body)) {
			t.Errorf("%s: record has %d bytes received, want %d", bc.name, d.BytesIn, len(bc.body))
		}
		chunked := reflect.DeepEqual(d.Seen.TransferEncoding, []string{"chunked"})
		switch {
		case bc.length > 0 && (d.Seen.ContentLength != bc.length || chunked):
			t.Errorf("%s: target saw length %d, %q", bc.name, d.Seen.ContentLength, d.Seen.TransferEncoding)
		case bc.length < 0 && !chunked:
			t.Errorf("%s: body of unknown length not sent chunked: %d, %q", bc.name, d.Seen.ContentLength, d.Seen.TransferEncoding)
		}
	}
	if tr := direct[6].Seen.Trailer; tr.Get("X-Sum") != "12" {
		t.Errorf("declared trailer: target saw %v", tr)
	}
}

// TestH2DirectBodyAllocations: a POST with a small body takes the direct
// path (far fewer allocations than ServeHTTP, client and target
// included), and so does one of unknown length.
func TestH2DirectBodyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	target := rawBackend(t)
	for _, known := range []bool{true, false} {
		var allocs [2]float64
		for i, direct := range []bool{true, false} {
			port := h2Service(t, direct, target, Config{})
			tr := h2cTransport(t, port)
			post := func() {
				var body io.Reader = strings.NewReader("payload")
				if !known {
					body = io.MultiReader(body)
				}
				req, _ := http.NewRequest("POST", "http://svc-1.example.on.aws/x", body)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			post()
			allocs[i] = testing.AllocsPerRun(200, post)
		}
		t.Logf("known length %v: allocations per request: direct %.0f, ServeHTTP %.0f", known, allocs[0], allocs[1])
		if allocs[1]-allocs[0] < 10 {
			t.Errorf("known length %v: direct path %.0f allocations per request, ServeHTTP %.0f: want at least 10 fewer", known, allocs[0], allocs[1])
		}
	}
}

// TestH2DirectBodyReset: a client that resets its stream in the middle
// of a streamed body gets the target connection closed, so the target
// never takes the cut body for a whole one.
func TestH2DirectBodyReset(t *testing.T) {
	got := make(chan string, 1)
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, err := io.ReadAll(req.Body)
		if err != nil {
			got <- "cut after " + fmt.Sprint(len(b)) + " bytes"
			return
		}
		got <- "whole body of " + fmt.Sprint(len(b)) + " bytes"
	})
	rec := &recorder{}
	port := h2Service(t, true, target, Config{Observer: rec})
	rc := dialRawH2(t, port)
	rc.post(1, "/up")
	rc.data(1, false, bytes.Repeat([]byte("x"), 1000))
	time.Sleep(50 * time.Millisecond) // the first chunk reaches the target
	rc.reset(1)
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "cut after") {
			t.Errorf("target: %s, want the body cut", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the target's connection stayed open after the client reset its stream")
	}
	waitFor(t, "the record", func() bool { return len(rec.all()) == 1 })
	if r := rec.all()[0]; r.FailureReason != errClientGone.reason || r.BytesReceived != 1000 {
		t.Errorf("record: failure %q, %d bytes received", r.FailureReason, r.BytesReceived)
	}
}

// TestH2DirectEarlyAnswer: a target that answers before reading a
// streamed body, and then reads no more of it, has its answer reach the
// client once the body's write gives up (the service's idle timeout),
// and its connection is closed rather than pooled: it may still wait for
// the rest of the body.
func TestH2DirectEarlyAnswer(t *testing.T) {
	closed := make(chan struct{}, 1)
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!"); err != nil {
			return
		}
		time.Sleep(2500 * time.Millisecond) // reads nothing meanwhile
		_, _ = io.Copy(io.Discard, c)       // then drains until the gateway closes
		closed <- struct{}{}
	})
	port := freePort(t)
	e := newEngine(t, Config{})
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
	svc.IdleTimeoutSeconds = 1 // the body's write gives up after a second
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target)))
	tr := h2cTransport(t, port)
	body := io.MultiReader(bytes.NewReader(make([]byte, 64<<20))) // more than the sockets hold
	req, _ := http.NewRequest("POST", "http://svc-1.example.on.aws/up", body)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "big!" {
		t.Fatalf("%d %q, want the target's early 413", resp.StatusCode, b)
	}
	time.Sleep(50 * time.Millisecond) // the stream's end; the idle reaper needs a second
	if n := pooledConns(e); n != 0 {
		t.Fatalf("%d target connections pooled after a body cut short, want 0", n)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the target connection was kept after a body cut short")
	}
}

// pooledConns counts the idle target connections of e's fast-path pools.
func pooledConns(e *Engine) int {
	n := 0
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, u := range e.upstreams {
		u.mu.Lock()
		for _, p := range u.pools {
			p.mu.Lock()
			n += len(p.conns)
			p.mu.Unlock()
		}
		u.mu.Unlock()
	}
	return n
}

// TestH2DirectEarlyAnswerGoServer: Go's server answers 413 to a large
// body it will not read, and closes: the client gets the 413 on both
// paths, for a body of known and of unknown length.
func TestH2DirectEarlyAnswerGoServer(t *testing.T) {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	for _, direct := range []bool{true, false} {
		for _, known := range []bool{true, false} {
			port := h2Service(t, direct, srv.Listener.Addr().String(), Config{})
			tr := h2cTransport(t, port)
			var body io.Reader = bytes.NewReader(make([]byte, 8<<20))
			if !known {
				body = io.MultiReader(body)
			}
			req, _ := http.NewRequest("POST", "http://svc-1.example.on.aws/up", body)
			resp, err := tr.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("direct=%v known length=%v: %v, %v; want 413", direct, known, resp, err)
			}
			if resp != nil {
				resp.Body.Close()
			}
			tr.CloseIdleConnections()
		}
	}
}

// TestH2DirectBodyNotResent: a PUT whose reused target connection is
// closed after the request was taken, before any answer, is not sent
// again (as on the other paths): the target runs it once and the client
// gets 502.
func TestH2DirectBodyNotResent(t *testing.T) {
	var mu sync.Mutex
	puts := 0
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(req.Body)
			if req.Method == "PUT" {
				mu.Lock()
				puts++
				first := puts == 1
				mu.Unlock()
				if first {
					return // taken, then the connection goes without an answer
				}
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}
	})
	port := h2Service(t, true, target, Config{})
	tr := h2cTransport(t, port)
	req, _ := http.NewRequest("GET", "http://svc-1.example.on.aws/warm", nil) // pools a connection
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest("PUT", "http://svc-1.example.on.aws/obj", strings.NewReader("v=1"))
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if puts != 1 || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("the target took the PUT %d times; the client got %d, want once and 502", puts, resp.StatusCode)
	}
}

// TestH2DirectStalledBody: a client that stops sending its body in the
// middle has its stream reset after the service's idle timeout, and the
// target connection closed, whether the body was to be read whole or
// streamed.
func TestH2DirectStalledBody(t *testing.T) {
	for _, length := range []int{100, 100 << 10} {
		t.Run(fmt.Sprint("content-length=", length), func(t *testing.T) {
			gone := make(chan struct{}, 1)
			target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
				_, _ = io.Copy(io.Discard, br) // until the gateway closes
				gone <- struct{}{}
			})
			port := freePort(t)
			rec := &recorder{}
			e := newEngine(t, Config{Observer: rec})
			svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
			svc.IdleTimeoutSeconds = 1
			mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg", model.ProtocolHTTP, "", target)))
			rc := dialRawH2(t, port)
			rc.post(1, "/up", "content-length", fmt.Sprint(length))
			rc.data(1, false, []byte("0123456789"))
			waitFor(t, "the record", func() bool { return len(rec.all()) == 1 })
			if r := rec.all()[0]; r.FailureReason != errClientGone.reason || r.Duration < time.Second {
				t.Errorf("record: failure %q after %v, want %q after the idle timeout", r.FailureReason, r.Duration, errClientGone.reason)
			}
			if length > directBodyMax {
				select {
				case <-gone:
				case <-time.After(5 * time.Second):
					t.Error("the target connection stayed open")
				}
			}
		})
	}
}

// TestH2StalledBodyServeHTTP: a stalled body is bounded on the net/http
// path too (h2server's BodyIdleTimeout, the gateway's idle timeout).
func TestH2StalledBodyServeHTTP(t *testing.T) {
	target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) { _, _ = io.Copy(io.Discard, br) })
	port := freePort(t)
	rec := &recorder{}
	e := newEngine(t, Config{Observer: rec, IdleTimeout: time.Second})
	e.h2direct = false
	mustApply(t, e, testSnapshot(1, []snapshot.Service{testService("svc-1", "svc-1.example.on.aws",
		listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))}, testTG("tg", model.ProtocolHTTP, "", target)))
	rc := dialRawH2(t, port)
	rc.post(1, "/up", "content-length", "100")
	rc.data(1, false, []byte("0123456789"))
	waitFor(t, "the record", func() bool { return len(rec.all()) == 1 })
	r := rec.all()[0]
	t.Logf("record: status %d, failure %q, after %v", r.Status, r.FailureReason, r.Duration)
	if r.Duration < time.Second {
		t.Errorf("the request ended after %v, before the idle timeout", r.Duration)
	}
}

// TestH2SmallBodyResetBytes: a body read whole that the client resets
// part way has the bytes that came in the record, as when streamed.
func TestH2SmallBodyResetBytes(t *testing.T) {
	for _, length := range []int{100, 100 << 10} {
		target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) { _, _ = io.Copy(io.Discard, br) })
		rec := &recorder{}
		rc := dialRawH2(t, h2Service(t, true, target, Config{Observer: rec}))
		rc.post(1, "/up", "content-length", fmt.Sprint(length))
		rc.data(1, false, bytes.Repeat([]byte("x"), 10))
		time.Sleep(100 * time.Millisecond)
		rc.reset(1)
		waitFor(t, "the record", func() bool { return len(rec.all()) == 1 })
		if r := rec.all()[0]; r.BytesReceived != 10 || r.FailureReason != errClientGone.reason {
			t.Errorf("content-length %d: record %d bytes received, failure %q; want 10 and %q", length, r.BytesReceived, r.FailureReason, errClientGone.reason)
		}
	}
}
