package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pol   Policy
		wants []string // substrings of the error; none means valid
	}{
		{"zero", Policy{}, nil},
		{"full", Policy{Protocol: GRPC, IdleTimeout: time.Minute, PerRequestTimeout: time.Second,
			Retry:   RetryPolicy{NumRetries: 10, On: Retry503 | RetryUnavailable, BudgetPercent: 20},
			Outlier: OutlierPolicy{Consecutive5xx: 5, BaseEjection: time.Second, MaxEjectionPercent: 100},
			Breaker: BreakerPolicy{MaxConnections: 1, MaxPendingRequests: 1, MaxRequests: 1}}, nil},
		{"everything wrong", Policy{Protocol: 9, IdleTimeout: -1,
			Retry:   RetryPolicy{NumRetries: 11, On: 1 << 15, BudgetPercent: 101, PerTryTimeout: -1},
			Outlier: OutlierPolicy{Consecutive5xx: -1, MaxEjectionPercent: -1},
			Breaker: BreakerPolicy{MaxRequests: -2}},
			[]string{"Protocol", "IdleTimeout", "Retry.NumRetries", "Retry.On", "Retry.BudgetPercent",
				"Retry.PerTryTimeout", "Outlier.Consecutive5xx", "Outlier.MaxEjectionPercent", "Breaker.MaxRequests"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pol.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not wrap ErrInvalidPolicy", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w+":") {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	p := newProxy(t, Config{})
	addr := listen(t, p, "a", httpPolicy())
	if _, err := p.Listen("b", addr, httpPolicy()); err == nil {
		t.Fatal("bound a busy address")
	}
	if _, err := p.Listen("b", "127.0.0.1:0", Policy{Protocol: 7}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("invalid policy: %v", err)
	}
	if err := p.SetPolicy("a", Policy{Retry: RetryPolicy{NumRetries: -1}}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("SetPolicy: %v", err)
	}
	if got := svcOf(p, "a").pol.Load().Protocol; got != HTTP {
		t.Fatalf("an invalid policy replaced the old one: %v", got)
	}
	if _, ok := p.Stats("never"); ok {
		t.Fatal("stats of an unknown service")
	}
	p.Close(context.Background())
	if _, err := p.Listen("c", "127.0.0.1:0", httpPolicy()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}

// TestCloseDrains: Close stops accepting at once and lets the request in
// flight finish.
func TestCloseDrains(t *testing.T) {
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		g.wait(r.Context())
		io.WriteString(w, "finished")
	})
	p := New(Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	c := newClient(t)
	inflight := make(chan result, 1)
	go func() { inflight <- get(t, c, addr) }()
	waitFor(t, "the request", func() bool { return g.waiting.Load() == 1 })

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	g.open()
	if r := <-inflight; r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestCloseCuts: past Close's context, requests and TCP streams are cut.
func TestCloseCuts(t *testing.T) {
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { g.wait(r.Context()) })
	echo := newEchoServer(t)
	p := New(Config{})
	p.SetEndpoints("web", []Endpoint{b.endpoint("")})
	p.SetEndpoints("db", []Endpoint{{Addr: echo}})
	webAddr := listen(t, p, "web", httpPolicy())
	dbAddr := listen(t, p, "db", Policy{Protocol: TCP})
	go newClient(t).Get("http://" + webAddr + "/")
	waitFor(t, "the request", func() bool { return g.waiting.Load() == 1 })
	conn, err := net.Dial("tcp", dbAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	roundTrip(t, conn, "open")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the deadline", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the TCP stream survived Close")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestConnRecords(t *testing.T) {
	b := okBackend(t, "b")
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
	resp, err := io.ReadAll(conn)
	conn.Close()
	if err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 200") {
		t.Fatalf("got %q, %v", resp, err)
	}
	waitFor(t, "the close record", func() bool { return len(rec.of(KindConnClose)) == 1 })
	opened, closed := rec.of(KindConnOpen), rec.of(KindConnClose)
	if len(opened) != 1 || closed[0].BytesOut != int64(len(resp)) || closed[0].BytesIn == 0 || closed[0].Service != "svc" {
		t.Fatalf("open %+v close %+v", opened, closed)
	}
	if st, _ := p.Stats("svc"); st.ActiveConnections != 0 || st.ActiveRequests != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNoGoroutineLeak: after Close and the backends' shutdown, the
// goroutines are back to where they were.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		web := okBackend(t, "web")
		echo := newEchoServer(t)
		p := New(Config{})
		p.SetEndpoints("web", []Endpoint{web.endpoint("")})
		p.SetEndpoints("db", []Endpoint{{Addr: echo}})
		pol := httpPolicy()
		pol.IdleTimeout = time.Second // the idle watchdog runs
		pol.Retry = RetryPolicy{NumRetries: 1, On: Retry503, PerTryTimeout: time.Second}
		webAddr := listen(t, p, "web", pol)
		h2Addr := listen(t, p, "web", Policy{Protocol: HTTP2, PerRequestTimeout: time.Second})
		dbAddr := listen(t, p, "db", Policy{Protocol: TCP, IdleTimeout: time.Second})
		c1, c2 := &http.Transport{}, &http.Transport{Protocols: new(http.Protocols)}
		c2.Protocols.SetUnencryptedHTTP2(true)
		for _, x := range []struct {
			tr   *http.Transport
			addr string
		}{{c1, webAddr}, {c2, h2Addr}} {
			resp, err := (&http.Client{Transport: x.tr}).Post("http://"+x.addr+"/", "text/plain", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		conn, err := net.Dial("tcp", dbAddr)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, conn, "x")
		conn.Close()
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		c1.CloseIdleConnections()
		c2.CloseIdleConnections()
		web.Close()
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+1 })
}

// TestUnlisten: the listeners of one service close at once (their address
// can be bound again), a request in flight finishes through drain, and
// other services keep serving.
func TestUnlisten(t *testing.T) {
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			g.wait(r.Context())
		}
		io.WriteString(w, "finished")
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	p.SetEndpoints("other", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", httpPolicy())
	other := listen(t, p, "other", httpPolicy())
	c := newClient(t)
	inflight := make(chan result, 1)
	go func() { inflight <- do(t, c, http.MethodGet, "http://"+addr+"/slow", "") }()
	waitFor(t, "the request", func() bool { return g.waiting.Load() == 1 })

	drain := p.Unlisten("svc")
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("the unlistened address still accepts connections")
	}
	// The address is free: a new listener takes it.
	if _, err := p.Listen("svc", addr, httpPolicy()); err != nil {
		t.Fatalf("Listen again on %s: %v", addr, err)
	}
	if r := get(t, newClient(t), other); r.status != 200 {
		t.Errorf("other service: %d", r.status)
	}
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- drain(ctx)
	}()
	g.open()
	if r := <-inflight; r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	if r := get(t, newClient(t), addr); r.status != 200 {
		t.Errorf("the new listener: %d", r.status)
	}
}
