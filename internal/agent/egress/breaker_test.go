package egress

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBreakerMaxRequests(t *testing.T) {
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { g.wait(r.Context()) })
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := retryPolicy(2, Retry503)
	pol.Breaker.MaxRequests = 1
	addr := listen(t, p, "svc", pol)
	c := newClient(t)

	first := make(chan result, 1)
	go func() { first <- get(t, c, addr) }()
	waitFor(t, "the first request", func() bool { return g.waiting.Load() == 1 })
	r := get(t, c, addr)
	if r.status != 503 || !strings.Contains(r.body, "MaxRequests") || r.header.Get("X-Trellis-Overloaded") != "true" {
		t.Fatalf("got %d %q %v", r.status, r.body, r.header)
	}
	if b.hits.Load() != 1 {
		t.Fatalf("the refused request reached the endpoint (%d hits)", b.hits.Load())
	}
	if st, _ := p.Stats("svc"); st.Overflows != 1 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
	g.open()
	if r := <-first; r.status != 200 {
		t.Fatalf("first: %d", r.status)
	}
	var refused []Record
	for _, r := range rec.waitRequests(t, 2) {
		if r.BreakerOpen {
			refused = append(refused, r)
		}
	}
	if len(refused) != 1 || refused[0].Failure != FailureOverflow || !refused[0].Generated || refused[0].Endpoint != "" {
		t.Fatalf("records %+v", refused)
	}
}

// TestBreakerPending: with one HTTP/1.1 connection allowed and one
// pending request, a third request is refused at once; the pending one is
// served when the connection frees.
func TestBreakerPending(t *testing.T) {
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			g.wait(r.Context())
		}
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := httpPolicy()
	pol.Breaker = BreakerPolicy{MaxConnections: 1, MaxPendingRequests: 1}
	addr := listen(t, p, "svc", pol)
	c := newClient(t)
	s := svcOf(p, "svc")

	first := make(chan result, 1)
	go func() { first <- do(t, c, "GET", "http://"+addr+"/block", "") }()
	waitFor(t, "the first request", func() bool { return g.waiting.Load() == 1 })
	second := make(chan result, 1)
	go func() { second <- do(t, c, "GET", "http://"+addr+"/", "") }()
	waitFor(t, "the pending request", func() bool { return s.slots.pending() == 1 })

	if r := get(t, c, addr); r.status != 503 || !strings.Contains(r.body, "MaxPendingRequests") {
		t.Fatalf("third: %d %q", r.status, r.body)
	}
	if b.hits.Load() != 1 {
		t.Fatalf("%d requests reached the endpoint", b.hits.Load())
	}
	g.open()
	if r := <-first; r.status != 200 {
		t.Fatalf("first: %d", r.status)
	}
	if r := <-second; r.status != 200 {
		t.Fatalf("second: %d", r.status)
	}
	if n := s.connCount.Load(); n > 1 {
		t.Fatalf("%d connections open to the endpoint, want at most 1", n)
	}
}

// TestBreakerPendingTimeout: a pending request is bounded by the
// per-request timeout.
func TestBreakerPendingTimeout(t *testing.T) {
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { g.wait(r.Context()) })
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := httpPolicy()
	pol.PerRequestTimeout = 100 * time.Millisecond
	pol.Breaker = BreakerPolicy{MaxConnections: 1}
	addr := listen(t, p, "svc", pol)
	c := newClient(t)
	go get(t, c, addr)
	waitFor(t, "the first request", func() bool { return g.waiting.Load() == 1 })
	if r := get(t, c, addr); r.status != 504 {
		t.Fatalf("pending request: %d %q", r.status, r.body)
	}
	if s := svcOf(p, "svc"); s.slots.pending() != 0 {
		t.Fatal("the timed-out request still waits")
	}
}

func TestSlotGate(t *testing.T) {
	var g slotGate
	ctx := context.Background()
	if err := g.acquire(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- g.acquire(ctx, 1, 1) }()
	waitFor(t, "the waiter", func() bool { return g.pending() == 1 })
	if err := g.acquire(ctx, 1, 1); err != errOverflow {
		t.Fatalf("over the pending limit: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	g.release(1) // handed to the waiter
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(cctx, 1, 0); err == nil {
		t.Fatal("acquired a busy slot with a dead context")
	}
	g.release(1)
	if g.busy != 0 || g.pending() != 0 {
		t.Fatalf("busy %d pending %d", g.busy, g.pending())
	}
}

func TestBreakerTCPMaxConnections(t *testing.T) {
	echo := newEchoServer(t)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("db", []Endpoint{{Addr: echo}})
	addr := listen(t, p, "db", Policy{Protocol: TCP, Breaker: BreakerPolicy{MaxConnections: 1}})

	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	roundTrip(t, first, "one")
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatalf("second connection read %d bytes, want it closed", n)
	}
	if st, _ := p.Stats("db"); st.Overflows != 1 {
		t.Fatalf("stats %+v", st)
	}
	waitFor(t, "the refused connection's record", func() bool {
		for _, r := range rec.of(KindConnClose) {
			if r.BreakerOpen && r.Failure == FailureOverflow {
				return true
			}
		}
		return false
	})
}
