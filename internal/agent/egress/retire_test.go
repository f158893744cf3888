package egress

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetiredTransportClosesConnections: a request still running on a
// transport that a policy change retired gives its endpoint connection
// back to the retired pool when it ends, after the first sweeps; with no
// idle timeout nothing else would ever close it. The sweeps go on while
// the retired transport has connections open, so it is closed, on each
// of the three ways a request reaches an endpoint.
func TestRetiredTransportClosesConnections(t *testing.T) {
	cases := []struct {
		name     string
		protocol Protocol
		path     string
	}{
		{"fast path", HTTP, "/slow"},
		{"h1client", HTTP, "/slow%20declined"}, // '%': the fast path declines it
		{"http2", HTTP2, "/slow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			b, open := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
				g.wait(r.Context())
				w.Write([]byte("done"))
			})
			p := newProxy(t, Config{})
			p.retireSweep = 20 * time.Millisecond
			p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
			pol := Policy{Protocol: tc.protocol} // no idle or per-request timeout
			addr := listen(t, p, "svc", pol)

			done := make(chan result, 1)
			c := newClient(t)
			go func() { done <- do(t, c, "GET", "http://"+addr+tc.path, "") }()
			waitFor(t, "the request at the endpoint", func() bool { return g.waiting.Load() == 1 })
			s := svcOf(p, "svc")
			old := s.up.Load()

			pol.Breaker.MaxConnections = 100 // another transport
			if err := p.SetPolicy("svc", pol); err != nil {
				t.Fatal(err)
			}
			if s.up.Load() == old {
				t.Fatal("the policy change kept the transport")
			}
			time.Sleep(5 * p.retireSweep) // sweeps pass while the request runs
			if n := old.open.Load(); n != 1 {
				t.Fatalf("retired transport has %d connections open during the request, want 1", n)
			}
			g.open()
			if r := <-done; r.status != http.StatusOK || r.body != "done" {
				t.Fatalf("request through the retired transport: %d %q", r.status, r.body)
			}
			waitFor(t, "the endpoint connection closed", func() bool { return open.Load() == 0 })
			waitFor(t, "the sweeps to end", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return len(s.retired) == 1 && s.retired[0].done.Load()
			})
			if n := old.open.Load(); n != 0 {
				t.Errorf("retired transport counts %d open connections after the sweeps", n)
			}
		})
	}
}

// TestRetiredTransportWokenByDial: a request that took the transport
// before the policy change has no connection open between an attempt
// and its retry; the sweeps may end then, and the retry's dial starts
// them again, so its connection is closed once given back.
func TestRetiredTransportWokenByDial(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"fast path", "/slow"},
		{"h1client", "/slow%20declined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			var hits atomic.Int64
			b, open := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					g.wait(r.Context())
					w.Header().Set("Connection", "close") // no connection open until the retry
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.Write([]byte("done"))
			})
			p := newProxy(t, Config{})
			p.retireSweep = time.Millisecond // a sweep falls in the retry's backoff
			p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
			pol := Policy{Protocol: HTTP, Retry: RetryPolicy{NumRetries: 1, On: Retry503}}
			addr := listen(t, p, "svc", pol)
			done := make(chan result, 1)
			c := newClient(t)
			go func() { done <- do(t, c, "GET", "http://"+addr+tc.path, "") }()
			waitFor(t, "the request at the endpoint", func() bool { return g.waiting.Load() == 1 })
			s := svcOf(p, "svc")
			pol.Breaker.MaxConnections = 100 // another transport
			if err := p.SetPolicy("svc", pol); err != nil {
				t.Fatal(err)
			}
			g.open()
			if r := <-done; r.status != http.StatusOK || r.body != "done" {
				t.Fatalf("retried request: %d %q", r.status, r.body)
			}
			if n := hits.Load(); n != 2 {
				t.Fatalf("endpoint got %d requests, want 2", n)
			}
			waitFor(t, "the retry's connection closed", func() bool { return open.Load() == 0 })
			waitFor(t, "the sweeps to end", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return len(s.retired) == 1 && s.retired[0].done.Load()
			})
		})
	}
}

// countingBackend is newBackend's HTTP/1.1 and h2c server, which also
// counts the connections it has open.
func countingBackend(t *testing.T, h http.HandlerFunc) (*backend, *atomic.Int64) {
	var open atomic.Int64
	b := &backend{Server: httptest.NewUnstartedServer(h)}
	b.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	b.Config.Protocols = new(http.Protocols)
	b.Config.Protocols.SetHTTP1(true)
	b.Config.Protocols.SetUnencryptedHTTP2(true)
	b.Start()
	t.Cleanup(b.Close)
	return b, &open
}
