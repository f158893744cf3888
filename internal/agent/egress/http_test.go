package egress

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestRoutingAndHeaders(t *testing.T) {
	type seen struct {
		host, path, query, xff, xfp, tp, reqID, custom, keepAlive, ua string
	}
	got := make(chan seen, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{
			host: r.Host, path: r.URL.Path, query: r.URL.RawQuery,
			xff: r.Header.Get("X-Forwarded-For"), xfp: r.Header.Get("X-Forwarded-Proto"),
			tp: r.Header.Get("Traceparent"), reqID: r.Header.Get("X-Request-Id"),
			custom: r.Header.Get("X-Hop"), keepAlive: r.Header.Get("Keep-Alive"),
			ua: strings.Join(r.Header.Values("User-Agent"), ","),
		}
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("X-Answer", "42")
		io.WriteString(w, "hello")
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("orders", []Endpoint{b.endpoint("i-1")})
	addr := listen(t, p, "orders", httpPolicy())

	c := newClient(t)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/orders?id=7", nil)
	req.Host = "orders.ns.local:8080"
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must go")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("User-Agent", "app/1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Answer") != "42" || resp.Header.Get("X-Secret") != "" {
		t.Errorf("response headers: X-Answer=%q X-Secret=%q, want 42 and none",
			resp.Header.Get("X-Answer"), resp.Header.Get("X-Secret"))
	}
	s := <-got
	if s.host != "orders.ns.local:8080" || s.path != "/v1/orders" || s.query != "id=7" {
		t.Errorf("endpoint saw host %q path %q query %q", s.host, s.path, s.query)
	}
	if s.custom != "" || s.keepAlive != "" {
		t.Errorf("hop-by-hop headers forwarded: X-Hop=%q Keep-Alive=%q", s.custom, s.keepAlive)
	}
	if s.xff != "127.0.0.1" || s.xfp != "http" || s.ua != "app/1" {
		t.Errorf("x-forwarded-for %q, x-forwarded-proto %q, user-agent %q", s.xff, s.xfp, s.ua)
	}
	if !validTraceparent(s.tp) || !strings.HasSuffix(s.tp, "-01") {
		t.Errorf("generated traceparent %q is not valid", s.tp)
	}
	if len(s.reqID) != 36 || s.reqID[14] != '4' {
		t.Errorf("x-request-id %q is not a version 4 UUID", s.reqID)
	}

	r := rec.waitRequests(t, 1)[0]
	if r.Service != "orders" || r.Endpoint != "i-1" || r.EndpointAddr != b.Listener.Addr().String() ||
		r.Status != 200 || r.BytesOut != 5 || r.Method != "GET" || r.Path != "/v1/orders" ||
		r.TraceParent != s.tp || r.RequestID != s.reqID || r.Generated || r.Failure != FailureNone || r.Retries != 0 {
		t.Errorf("record: %+v", r)
	}
}

func TestTraceparent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	type seen struct{ tp, ts string }
	got := make(chan seen, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("Traceparent"), r.Header.Get("Tracestate")}
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)

	for _, tc := range []struct {
		name       string
		tp, ts     string
		keep       bool
		keepState  bool
		wantHeader string
	}{
		{name: "absent", keep: false},
		{name: "valid kept", tp: valid, ts: "vendor=1", keep: true, keepState: true},
		{name: "future version kept", tp: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra", keep: true},
		{name: "uppercase replaced", tp: strings.ToUpper(valid), ts: "vendor=1"},
		{name: "zero trace id replaced", tp: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ts: "vendor=1"},
		{name: "version ff replaced", tp: "ff" + valid[2:]},
		{name: "short replaced", tp: valid[:54]},
		{name: "00 with suffix replaced", tp: valid + "-x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.tp != "" {
				hdr = append(hdr, "Traceparent", tc.tp)
			}
			if tc.ts != "" {
				hdr = append(hdr, "Tracestate", tc.ts)
			}
			if r := do(t, c, "GET", "http://"+addr+"/", "", hdr...); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			s := <-got
			if tc.keep {
				if s.tp != tc.tp {
					t.Errorf("traceparent %q, want %q passed through", s.tp, tc.tp)
				}
			} else if s.tp == tc.tp || !validTraceparent(s.tp) {
				t.Errorf("traceparent %q, want a new valid one", s.tp)
			}
			if wantTS := map[bool]string{true: tc.ts}[tc.keepState]; s.ts != wantTS {
				t.Errorf("tracestate %q, want %q", s.ts, wantTS)
			}
		})
	}
}

func TestXForwardedForAppends(t *testing.T) {
	got := make(chan string, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Forwarded-For") })
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	do(t, newClient(t), "GET", "http://"+addr+"/", "", "X-Forwarded-For", "10.0.0.1")
	if xff := <-got; xff != "10.0.0.1, 127.0.0.1" {
		t.Fatalf("x-forwarded-for %q", xff)
	}
}

func TestNoEndpoints(t *testing.T) {
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	addr := listen(t, p, "payments", httpPolicy())
	r := get(t, newClient(t), addr)
	if r.status != 503 || !strings.Contains(r.body, `"payments"`) {
		t.Fatalf("got %d %q, want 503 naming the service", r.status, r.body)
	}
	got := rec.waitRequests(t, 1)[0]
	if !got.Generated || got.Failure != FailureNoEndpoints || got.Status != 503 {
		t.Errorf("record: %+v", got)
	}
}

func TestConnectRefused(t *testing.T) {
	b := okBackend(t, "a")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	if r := do(t, newClient(t), http.MethodConnect, "http://"+addr+"/", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("CONNECT: %d", r.status)
	}
	if b.hits.Load() != 0 {
		t.Fatal("CONNECT reached the endpoint")
	}
}

func TestP2CSpread(t *testing.T) {
	p := newProxy(t, Config{})
	bs := []*backend{okBackend(t, "a"), okBackend(t, "b"), okBackend(t, "c")}
	p.SetEndpoints("svc", []Endpoint{bs[0].endpoint("a"), bs[1].endpoint("b"), bs[2].endpoint("c")})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	const n = 300
	for range n {
		if r := get(t, c, addr); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	for i, b := range bs {
		// Sequential requests tie on load, so P2C is uniform: ~100 each.
		if h := b.hits.Load(); h < n/10 {
			t.Errorf("endpoint %d got %d of %d requests", i, h, n)
		}
	}
}

// TestLeastRequest: with one request stuck on an endpoint, every new
// request goes to the other one (with two endpoints both are always the
// candidates, and the one with fewer requests in flight wins).
func TestLeastRequest(t *testing.T) {
	g := newGate(t)
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) { g.wait(r.Context()) })
	fast := okBackend(t, "fast")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{slow.endpoint("slow")})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)

	done := make(chan result, 1)
	go func() { done <- get(t, c, addr) }()
	waitFor(t, "the slow request to block", func() bool { return g.waiting.Load() == 1 })
	// The slow endpoint is kept, with its request in flight.
	p.SetEndpoints("svc", []Endpoint{slow.endpoint("slow"), fast.endpoint("fast")})
	for range 50 {
		if r := get(t, c, addr); r.status != 200 || r.body != "fast" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	}
	if fast.hits.Load() != 50 || slow.hits.Load() != 1 {
		t.Fatalf("fast got %d of 50, slow %d in all", fast.hits.Load(), slow.hits.Load())
	}
	g.open()
	if r := <-done; r.status != 200 {
		t.Fatalf("slow request: %d", r.status)
	}
}

func TestSetEndpointsLive(t *testing.T) {
	a, b, c := okBackend(t, "a"), okBackend(t, "b"), okBackend(t, "c")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{a.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	cl := newClient(t)
	if r := get(t, cl, addr); r.body != "a" {
		t.Fatalf("got %q", r.body)
	}

	// Replaced: the removed endpoint gets nothing new.
	p.SetEndpoints("svc", []Endpoint{b.endpoint("b")})
	for range 20 {
		if r := get(t, cl, addr); r.body != "b" {
			t.Fatalf("after replace got %q", r.body)
		}
	}
	if a.hits.Load() != 1 {
		t.Fatalf("removed endpoint got %d requests", a.hits.Load())
	}

	// Added while b is busy: the new endpoint takes the next request.
	g := newGate(t)
	busy := newBackend(t, func(w http.ResponseWriter, r *http.Request) { g.wait(r.Context()) })
	p.SetEndpoints("svc", []Endpoint{busy.endpoint("busy")})
	done := make(chan result, 1)
	go func() { done <- get(t, cl, addr) }()
	waitFor(t, "the busy request", func() bool { return g.waiting.Load() == 1 })
	p.SetEndpoints("svc", []Endpoint{busy.endpoint("busy"), c.endpoint("c")})
	if r := get(t, cl, addr); r.body != "c" {
		t.Fatalf("new endpoint not used at once: got %q", r.body)
	}
	g.open()
	if r := <-done; r.status != 200 {
		t.Fatalf("in-flight request on a kept endpoint: %d", r.status)
	}
	if st, _ := p.Stats("svc"); st.Endpoints != 2 || st.Requests != 23 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSetEndpointsKeepsState(t *testing.T) {
	old := buildSet(&endpointSet{}, []Endpoint{{ID: "a", Addr: "10.0.0.1:80"}, {ID: "b", Addr: "10.0.0.2:80"}})
	old.list[0].active.Store(3)
	next := buildSet(old, []Endpoint{
		{ID: "a", Addr: "10.0.0.1:80"},   // kept
		{ID: "b", Addr: "10.0.0.9:80"},   // moved: new state
		{ID: "a", Addr: "10.0.0.1:80"},   // duplicate: dropped
		{Addr: "10.0.0.3:80"}, {ID: "e"}, // no ID: keyed by address; no address: dropped
	})
	if len(next.list) != 3 {
		t.Fatalf("got %d endpoints", len(next.list))
	}
	if next.list[0] != old.list[0] || next.list[0].active.Load() != 3 {
		t.Error("kept endpoint lost its state")
	}
	if next.list[1] == old.list[1] {
		t.Error("moved endpoint kept its state")
	}
	if next.list[2].key != "10.0.0.3:80" {
		t.Errorf("key %q", next.list[2].key)
	}
}

func TestLargeBodiesStream(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
		w.Write(make([]byte, 3<<20))
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	body := strings.Repeat("x", 2<<20)
	r := do(t, newClient(t), "POST", "http://"+addr+"/", body)
	if r.status != 200 || !strings.HasPrefix(r.body, "2097152") || len(r.body) != 7+3<<20 {
		t.Fatalf("got %d, %d bytes", r.status, len(r.body))
	}
	got := rec.waitRequests(t, 1)[0]
	if got.BytesIn != 2<<20 || got.BytesOut != 7+3<<20 {
		t.Fatalf("bytes in %d out %d", got.BytesIn, got.BytesOut)
	}
}
