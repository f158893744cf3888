package egress

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testnet"
)

// rawEndpoint answers every request head it reads with answer, over
// kept-alive connections, allocating nothing per request once a
// connection is up (so that allocation counts are the proxy's). Each head
// is recorded when heads is set.
func rawEndpoint(t testing.TB, answer string, heads chan<- string) string {
	ans := []byte(answer)
	addr, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		var head []byte // reused: readHead would allocate
		for {
			head = head[:0]
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				head = append(head, line...)
				if string(line) == "\r\n" {
					break
				}
			}
			if heads != nil {
				heads <- string(head)
			}
			if _, err := c.Write(ans); err != nil {
				return
			}
		}
	})
	return addr
}

// rawRoundTrip writes req on c and reads one response with a Content-Length.
func rawRoundTrip(c net.Conn, br *bufio.Reader, req []byte, body []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	cl := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) == 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			cl = 0
			for _, d := range bytes.TrimSpace(v) {
				cl = cl*10 + int(d-'0')
			}
		}
	}
	_, err := io.ReadFull(br, body[:cl])
	return err
}

// TestFastPathZeroAlloc: a GET through the proxy allocates nothing once
// the client connection and the endpoint connection are warm, with ECS's
// default policy.
func TestFastPathZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\n\r\nok", nil)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", Policy{
		Protocol: HTTP, IdleTimeout: 300 * time.Second, PerRequestTimeout: 15 * time.Second,
		Retry:   RetryPolicy{NumRetries: 2, On: Retry503 | RetryConnectFailure | RetryRefusedStream, BudgetPercent: 20},
		Outlier: OutlierPolicy{Consecutive5xx: 5, Interval: 10 * time.Second, BaseEjection: 30 * time.Second, MaxEjectionPercent: 10},
		Breaker: BreakerPolicy{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024},
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET /x?y=1 HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: t\r\n\r\n")
	body := make([]byte, 64)
	for range 10 {
		if err := rawRoundTrip(c, br, req, body); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if e := rawRoundTrip(c, br, req, body); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if st, _ := p.Stats("svc"); st.Requests < 1010 {
		t.Errorf("%d requests counted, want at least 1010", st.Requests)
	}
}

// TestFastPathHeaders: the head an endpoint gets from the fast path is
// rewritten as rewriteRequest rewrites a net/http request: hop-by-hop
// fields and those Connection names out, "te: trailers" kept,
// x-forwarded-for appended, x-forwarded-proto added, a broken traceparent
// replaced (its tracestate dropped), an x-request-id kept; the other
// fields, the target and a small body as they came.
func TestFastPathHeaders(t *testing.T) {
	heads := make(chan string, 4)
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", heads)
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	var mu sync.Mutex
	var recs []Record
	p.obs = ObserverFunc(func(r *Record) {
		if r.Kind == KindRequest {
			mu.Lock()
			recs = append(recs, r.Clone())
			mu.Unlock()
		}
	})
	addr := listen(t, p, "svc", httpPolicy())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := "POST /a/b?q=1 HTTP/1.1\r\nHost: svc:8080\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n" +
		"Keep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nTraceparent: bogus\r\n" +
		"Tracestate: a=b\r\nX-Request-Id: rid-1\r\nx-custom: v\r\nContent-Length: 3\r\n\r\nabc"
	body := make([]byte, 8)
	if err := rawRoundTrip(c, br, []byte(req), body); err != nil {
		t.Fatal(err)
	}
	got := <-heads
	for _, want := range []string{
		"POST /a/b?q=1 HTTP/1.1\r\n", "Host: svc:8080\r\n", "Te: trailers\r\n",
		"X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n", "X-Forwarded-Proto: http\r\n",
		// x-custom keeps its spelling: net/http's parser would have
		// made it X-Custom, so the fast path served the request.
		"X-Request-Id: rid-1\r\n", "x-custom: v\r\n", "Content-Length: 3\r\n", "\r\nTraceparent: 00-",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("endpoint head lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"Connection", "X-Hop", "Keep-Alive", "bogus", "Tracestate", "TE: trailers"} {
		if strings.Contains(got, gone) {
			t.Errorf("endpoint head has %q:\n%s", gone, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Method != "POST" || r.Path != "/a/b" || r.Host != "svc:8080" || r.Status != 200 || r.BytesIn != 3 ||
		r.BytesOut != 2 || r.RequestID != "rid-1" || !validTraceparent(r.TraceParent) || r.Endpoint != "a" {
		t.Errorf("record %+v", r)
	}
}

// TestFastPathResponses: the response framings reach the client as a
// net/http client reads them: chunked with trailers, delimited by the
// endpoint closing (re-framed as chunks), and HEAD.
func TestFastPathResponses(t *testing.T) {
	for _, tc := range []struct {
		name, method, answer, want string
	}{
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", "abc"},
		{"until close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close", "until-close"},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := rawEndpoint(t, tc.answer, nil)
			if tc.name == "until close" {
				ep = closingEndpoint(t, tc.answer)
			}
			p := newProxy(t, Config{})
			p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
			addr := listen(t, p, "svc", httpPolicy())
			c := newClient(t)
			for range 2 {
				r := do(t, c, tc.method, "http://"+addr+"/", "")
				if r.status != 200 || r.body != tc.want {
					t.Fatalf("got %d %q, want 200 %q", r.status, r.body, tc.want)
				}
			}
		})
	}
}

// closingEndpoint answers one request per connection and closes it.
func closingEndpoint(t testing.TB, answer string) string {
	addr, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, answer)
		}
	})
	return addr
}

// TestCutUpOnlyItsOwn: a cut that loaded the endpoint connection just as
// its request ended does not reach it once another request has taken it
// from the pool; the owner's cut does.
func TestCutUpOnlyItsOwn(t *testing.T) {
	a, b := &h1ServerConn{}, &h1ServerConn{}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	uc := &fastUp{c: c1}
	a.watchUp(uc)
	loaded := a.fastUp.Load() // a's cut starts...
	a.unwatchUp(uc)           // ...a's request ends, the connection is pooled
	b.watchUp(uc)             // and b's request takes it
	a.cutUp(loaded)           // a's cut lands now
	go c2.Write([]byte("x"))
	if _, err := c1.Read(make([]byte, 1)); err != nil {
		t.Fatalf("b's read after a's late cut: %v", err)
	}
	b.cutUp(uc)
	var ne net.Error
	if _, err := c1.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("b's read after its own cut: %v, want a timeout", err)
	}
}
