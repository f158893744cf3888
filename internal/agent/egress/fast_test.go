package egress

import (
	"bufio"
	"bytes"
	"github.com/trellis-mesh/trellis/internal/h1wire"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawEndpoint answers every request head it reads with answer, over
// kept-alive connections, allocating nothing per request once a
// connection is up (so that allocation counts are the proxy's). Each head
// is recorded when heads is set.
func rawEndpoint(t testing.TB, answer string, heads chan<- string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ans := []byte(answer)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if end < 0 {
							break
						}
						if heads != nil {
							heads <- string(buf[:end+4])
						}
						n = copy(buf, buf[end+4:n])
						if _, err := c.Write(ans); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, answer)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFastPathTLS: between two agents over mutual TLS both hops take the
// fast path (a field name's spelling survives, which net/http's parser
// would change), B records the calling agent, and B's endpoint sees the
// x-forwarded-proto of A's client.
func TestFastPathTLS(t *testing.T) {
	ca := newTestCA(t)
	heads := make(chan string, 2)
	ep := rawEndpoint(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", heads)
	x := newAgents(t, httpPolicy(), ep, agentTLS(ca, ca.issue(t, "checkout", agentURI)), ingressTLS(t, ca))
	req, err := http.NewRequest("GET", "http://"+x.aAddr+"/tls", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["x-lower"] = []string{"1"} // not canonical: Go's client sends it as it is
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	got := <-heads
	for _, want := range []string{"GET /tls HTTP/1.1\r\n", "\r\nx-lower: 1\r\n", "X-Forwarded-Proto: http\r\n",
		"X-Forwarded-For: 127.0.0.1, 127.0.0.1\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("endpoint head lacks %q:\n%s", want, got)
		}
	}
	if r := x.recB.waitRequests(t, 1)[0]; r.PeerURI != agentURI || r.Status != 200 || r.Endpoint != "backend" {
		t.Fatalf("B's record %+v", r)
	}
}

// FuzzBuildHead: for any request head the framing rules accept, the head
// the fast path sends is one the same rules accept, with the method and
// target unchanged, no hop-by-hop field (nor one Connection names, but
// those the proxy sets itself, as the net/http path does), one
// x-forwarded-for ending with the client's address, a valid traceparent
// and an x-request-id.
func FuzzBuildHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("POST /x?y HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\nX-A: 1\r\nTE: trailers, gzip\r\n" +
		"X-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n" +
		"Tracestate: k=v\r\nX-Request-Id: \r\nX-Request-Id: b\r\nUpgrade: websocket\r\nProxy-Authorization: x\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nTraceparent: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ends, whole := h1wire.HeadEnds(in, nil)
		if !whole {
			return
		}
		var hd h1wire.Head
		hd.Reset()
		if hd.ParseRequest(in, ends) != nil || hd.Info.Pri {
			return
		}
		fs := &fastState{ip: "10.9.8.7"}
		var rec Record
		out := fs.buildHead(nil, &hd, &rec, "http")
		oends, whole := h1wire.HeadEnds(out, nil)
		if !whole || int(oends[len(oends)-1])+1 != len(out) {
			t.Fatalf("the head sent is not one whole head:\n%q", out)
		}
		var oh h1wire.Head
		oh.Reset()
		if err := oh.ParseRequest(out, oends); err != nil {
			t.Fatalf("the head sent breaks the framing rules (%v):\n%q", err, out)
		}
		if string(oh.Method) != string(hd.Method) || string(oh.Target) != string(hd.Target) || oh.HTTP10 {
			t.Fatalf("request line %q %q, want %q %q HTTP/1.1", oh.Method, oh.Target, hd.Method, hd.Target)
		}
		if oh.Info.CLValue != hd.Info.CLValue || oh.Info.TE != 0 {
			t.Fatalf("framing changed: %+v from %+v", oh.Info, hd.Info)
		}
		xff := 0
		for _, fd := range oh.Fields {
			switch fd.Kind {
			case h1wire.FieldConnection, h1wire.FieldHop, h1wire.FieldTransferEncoding, h1wire.FieldTrailer, h1wire.FieldExpect:
				t.Fatalf("hop-by-hop field %q sent:\n%q", fd.Name, out)
			case h1wire.FieldTE:
				if !bytes.Equal(fd.Value, []byte("trailers")) {
					t.Fatalf("TE %q sent", fd.Value)
				}
			}
			if hd.Listed(fd.Name) && !proxyField(fd.Name) {
				t.Fatalf("field %q named by Connection sent:\n%q", fd.Name, out)
			}
			if bytes.EqualFold(fd.Name, []byte("x-forwarded-for")) {
				xff++
				if !bytes.HasSuffix(fd.Value, []byte("10.9.8.7")) {
					t.Fatalf("x-forwarded-for %q", fd.Value)
				}
			}
		}
		if xff != 1 {
			t.Fatalf("%d x-forwarded-for fields:\n%q", xff, out)
		}
		if !validTraceparent(rec.TraceParent) || rec.RequestID == "" {
			t.Fatalf("record trace %q, request ID %q", rec.TraceParent, rec.RequestID)
		}
	})
}

// proxyField reports whether the proxy sets the field itself.
func proxyField(name []byte) bool {
	for _, n := range []string{"x-forwarded-for", "x-forwarded-proto", "traceparent", "x-request-id", "te"} {
		if bytes.EqualFold(name, []byte(n)) {
			return true
		}
	}
	return false
}
