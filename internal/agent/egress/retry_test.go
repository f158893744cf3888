package egress

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func retryPolicy(n int, on RetryOn) Policy {
	return Policy{Protocol: HTTP, Retry: RetryPolicy{NumRetries: n, On: on}}
}

// TestRetryOtherEndpoint: a failing endpoint's requests are retried on the
// other endpoint, once each, and the client always sees 200.
func TestRetryOtherEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(t *testing.T) string // the failing endpoint's address
	}{
		{"503", func(t *testing.T) string { return statusBackend(t, 503).Listener.Addr().String() }},
		{"killed endpoint", func(t *testing.T) string {
			b := okBackend(t, "doomed")
			addr := b.Listener.Addr().String()
			b.Close()
			return addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := okBackend(t, "good")
			rec := &recorder{}
			p := newProxy(t, Config{Observer: rec})
			p.SetEndpoints("svc", []Endpoint{{ID: "bad", Addr: tc.bad(t)}, good.endpoint("good")})
			addr := listen(t, p, "svc", retryPolicy(2, Retry503|RetryConnectFailure))
			c := newClient(t)
			const n = 30
			for range n {
				if r := get(t, c, addr); r.status != 200 || r.body != "good" {
					t.Fatalf("got %d %q", r.status, r.body)
				}
			}
			retried := 0
			for _, r := range rec.waitRequests(t, n) {
				if r.Retries > 1 || r.Endpoint != "good" {
					t.Fatalf("record %+v: want at most one retry, ending on the good endpoint", r)
				}
				retried += r.Retries
			}
			if retried == 0 || good.hits.Load() != n {
				t.Fatalf("%d retries, good endpoint got %d of %d", retried, good.hits.Load(), n)
			}
		})
	}
}

func TestNumRetries(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := statusBackend(t, 503)
			rec := &recorder{}
			p := newProxy(t, Config{Observer: rec})
			p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
			addr := listen(t, p, "svc", retryPolicy(n, Retry503))
			r := get(t, newClient(t), addr)
			// The endpoint's own last answer goes to the client.
			if r.status != 503 || r.body != "from backend" {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			if got := b.hits.Load(); got != int64(n+1) {
				t.Fatalf("%d attempts, want %d", got, n+1)
			}
			if got := rec.waitRequests(t, 1)[0]; got.Retries != n || got.Generated {
				t.Fatalf("record %+v", got)
			}
		})
	}
}

func TestRetryConditions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		on       RetryOn
		attempts int64
	}{
		{"503 on 503", 503, Retry503, 3},
		{"502 on 503 only", 502, Retry503, 1},
		{"502 on gateway-error", 502, RetryGatewayError, 3},
		{"500 on gateway-error", 500, RetryGatewayError, 1},
		{"500 on 5xx", 500, Retry5xx, 3},
		{"409 on retriable-4xx", 409, RetryRetriable4xx, 3},
		{"404 on everything", 404, Retry5xx | RetryGatewayError | RetryRetriable4xx, 1},
		{"503 on connect-failure", 503, RetryConnectFailure, 1},
		{"503 on unavailable (not gRPC)", 503, RetryUnavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := statusBackend(t, tc.status)
			p := newProxy(t, Config{})
			p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
			addr := listen(t, p, "svc", retryPolicy(2, tc.on))
			if r := get(t, newClient(t), addr); r.status != tc.status {
				t.Fatalf("status %d", r.status)
			}
			if got := b.hits.Load(); got != tc.attempts {
				t.Fatalf("%d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

// TestNonIdempotent: POST and PATCH are not retried after the endpoint
// answered, unless RetryNonIdempotent; their bodies are replayed intact.
func TestNonIdempotent(t *testing.T) {
	const body = "order=42"
	for _, tc := range []struct {
		method   string
		allow    bool
		attempts int64
	}{
		{"POST", false, 1},
		{"PATCH", false, 1},
		{"PUT", false, 3},
		{"POST", true, 3},
	} {
		t.Run(fmt.Sprintf("%s allow=%v", tc.method, tc.allow), func(t *testing.T) {
			var bad atomic.Int64
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if got, _ := io.ReadAll(r.Body); string(got) != body {
					bad.Add(1)
				}
				w.WriteHeader(503)
			})
			p := newProxy(t, Config{})
			p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
			pol := retryPolicy(2, Retry503)
			pol.Retry.RetryNonIdempotent = tc.allow
			addr := listen(t, p, "svc", pol)
			if r := do(t, newClient(t), tc.method, "http://"+addr+"/", body); r.status != 503 {
				t.Fatalf("status %d", r.status)
			}
			if got := b.hits.Load(); got != tc.attempts {
				t.Fatalf("%d attempts, want %d", got, tc.attempts)
			}
			if bad.Load() != 0 {
				t.Fatal("a replayed body differed")
			}
		})
	}
}

// TestPOSTRetriedAfterConnectFailure: nothing was sent, so a POST is
// safe to retry, body and all.
func TestPOSTRetriedAfterConnectFailure(t *testing.T) {
	const body = "payload"
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		w.Write(got)
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "dead", Addr: deadAddr(t)}, b.endpoint("alive")})
	addr := listen(t, p, "svc", retryPolicy(2, RetryConnectFailure))
	c := newClient(t)
	for range 20 {
		if r := do(t, c, "POST", "http://"+addr+"/", body); r.status != 200 || r.body != body {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	}
	retried := 0
	for _, r := range rec.waitRequests(t, 20) {
		retried += r.Retries
	}
	if retried == 0 {
		t.Fatal("the dead endpoint was never tried")
	}
}

// TestBodyPastReplayLimit: once more than MaxReplayBody went out, the
// attempt is final.
func TestBodyPastReplayLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		attempts int64
	}{
		{"within the limit", MaxReplayBody, 3},
		{"past the limit", MaxReplayBody + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes sync.Map
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				sizes.Store(n, true)
				w.WriteHeader(503)
			})
			p := newProxy(t, Config{})
			p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
			addr := listen(t, p, "svc", retryPolicy(2, Retry503))
			if r := do(t, newClient(t), "PUT", "http://"+addr+"/", strings.Repeat("b", tc.size)); r.status != 503 {
				t.Fatalf("status %d", r.status)
			}
			if got := b.hits.Load(); got != tc.attempts {
				t.Fatalf("%d attempts, want %d", got, tc.attempts)
			}
			sizes.Range(func(k, _ any) bool {
				if k.(int64) != int64(tc.size) {
					t.Errorf("an attempt carried %d bytes, want %d", k, tc.size)
				}
				return true
			})
		})
	}
}

// TestRetryBudget: with ten requests failing at once and a budget of 1%,
// only MinRetryConcurrency of them retry concurrently; the others get the
// endpoint's 503.
func TestRetryBudget(t *testing.T) {
	const n = 10
	var first sync.WaitGroup
	first.Add(n)
	g := newGate(t)
	var seen sync.Map
	var retriesIn atomic.Int64
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Id")
		if _, again := seen.LoadOrStore(id, true); !again {
			// First attempts all wait for each other, so that every
			// request is in flight when the 503s go out.
			first.Done()
			first.Wait()
			w.WriteHeader(503)
			return
		}
		retriesIn.Add(1)
		g.wait(r.Context())
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := retryPolicy(2, Retry503)
	pol.Retry.BudgetPercent = 1
	addr := listen(t, p, "svc", pol)
	c := newClient(t)

	statuses := make(chan int, n)
	for i := range n {
		go func() { statuses <- do(t, c, "GET", "http://"+addr+"/", "", "X-Id", fmt.Sprint(i)).status }()
	}
	counts := map[int]int{}
	for range n - MinRetryConcurrency {
		counts[<-statuses]++
	}
	waitFor(t, "the retries", func() bool { return retriesIn.Load() == MinRetryConcurrency })
	g.open()
	for range MinRetryConcurrency {
		counts[<-statuses]++
	}
	if counts[503] != n-MinRetryConcurrency || counts[200] != MinRetryConcurrency {
		t.Fatalf("statuses %v, want %d × 503 and %d × 200", counts, n-MinRetryConcurrency, MinRetryConcurrency)
	}
	if st, _ := p.Stats("svc"); st.RetriesOverBudget != n-MinRetryConcurrency || st.Retries != MinRetryConcurrency {
		t.Fatalf("stats %+v", st)
	}
}

func TestPerRequestTimeout(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := retryPolicy(2, Retry5xx)
	pol.PerRequestTimeout = 100 * time.Millisecond
	addr := listen(t, p, "svc", pol)
	start := time.Now()
	r := get(t, newClient(t), addr)
	if r.status != 504 || !strings.Contains(r.body, "upstream request timeout") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	got := rec.waitRequests(t, 1)[0]
	if !got.TimedOut || got.Failure != FailureTimeout || !got.Generated || got.Retries != 0 {
		t.Fatalf("record %+v", got)
	}
}

// TestPerRequestTimeoutCutsBody: a response still streaming at the
// timeout is cut, not ended cleanly.
func TestPerRequestTimeoutCutsBody(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := httpPolicy()
	pol.PerRequestTimeout = 100 * time.Millisecond
	addr := listen(t, p, "svc", pol)
	resp, err := newClient(t).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the cut body read as complete")
	}
	got := rec.waitRequests(t, 1)[0]
	if !got.TimedOut || got.Failure != FailureTimeout || got.Status != 200 {
		t.Fatalf("record %+v", got)
	}
}

// TestPerTryTimeout: the first attempt hangs past the per-try timeout and
// the retry answers.
func TestPerTryTimeout(t *testing.T) {
	var calls atomic.Int64
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "second")
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := retryPolicy(2, RetryGatewayError)
	pol.Retry.PerTryTimeout = 100 * time.Millisecond
	pol.PerRequestTimeout = 5 * time.Second
	addr := listen(t, p, "svc", pol)
	if r := get(t, newClient(t), addr); r.status != 200 || r.body != "second" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if got := rec.waitRequests(t, 1)[0]; got.Retries != 1 || got.TimedOut {
		t.Fatalf("record %+v", got)
	}
}

// TestPerTryTimeoutLastAttempt: when no retry is left the client gets 504.
func TestPerTryTimeoutLastAttempt(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := retryPolicy(1, RetryReset)
	pol.Retry.PerTryTimeout = 50 * time.Millisecond
	addr := listen(t, p, "svc", pol)
	if r := get(t, newClient(t), addr); r.status != 504 {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if b.hits.Load() != 2 {
		t.Fatalf("%d attempts", b.hits.Load())
	}
}

func TestConnectFailureAnswer(t *testing.T) {
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: deadAddr(t)}, {ID: "b", Addr: deadAddr(t)}})
	addr := listen(t, p, "svc", retryPolicy(2, RetryConnectFailure))
	r := get(t, newClient(t), addr)
	if r.status != 503 || !strings.Contains(r.body, "upstream connect error") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	got := rec.waitRequests(t, 1)[0]
	if got.Failure != FailureConnect || got.Retries != 2 || !got.Generated {
		t.Fatalf("record %+v", got)
	}
}

// TestRequestIdleTimeout: with no per-request timeout, a silent endpoint
// is cut at the idle timeout, and a slow but steady stream is not.
func TestRequestIdleTimeout(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/silent" {
			<-r.Context().Done()
			return
		}
		for range 8 {
			io.WriteString(w, "tick")
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	pol := httpPolicy()
	pol.IdleTimeout = 500 * time.Millisecond
	addr := listen(t, p, "svc", pol)
	c := newClient(t)
	if r := do(t, c, "GET", "http://"+addr+"/silent", ""); r.status != 504 || !strings.Contains(r.body, "idle") {
		t.Fatalf("silent: %d %q", r.status, r.body)
	}
	if r := do(t, c, "GET", "http://"+addr+"/steady", ""); r.status != 200 || r.body != strings.Repeat("tick", 8) {
		t.Fatalf("steady: %d %q", r.status, r.body)
	}
	recs := rec.waitRequests(t, 2)
	if recs[0].Failure != FailureIdle || !recs[0].TimedOut || recs[1].Failure != FailureNone {
		t.Fatalf("records %+v", recs)
	}
}

// TestRetryReset: an endpoint that closes the connection before answering
// is retried on "reset"; without it the client gets the proxy's 503.
func TestRetryReset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		on     RetryOn
		status int
	}{
		{"reset in On", RetryReset, 200},
		{"reset not in On", Retry503, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
					return
				}
				io.WriteString(w, "ok")
			})
			rec := &recorder{}
			p := newProxy(t, Config{Observer: rec})
			p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
			addr := listen(t, p, "svc", retryPolicy(1, tc.on))
			r := get(t, newClient(t), addr)
			if r.status != tc.status {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			if got := rec.waitRequests(t, 1)[0]; tc.status == 503 && (got.Failure != FailureReset || !got.Generated) {
				t.Fatalf("record %+v", got)
			}
		})
	}
}

// TestRetryReplaysUnreadBody: the first attempt's endpoint answers 503
// without reading the body; the retry still carries all of it.
func TestRetryReplaysUnreadBody(t *testing.T) {
	body := strings.Repeat("z", 4000)
	var calls atomic.Int64
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		got, _ := io.ReadAll(r.Body)
		fmt.Fprint(w, len(got), got[len(got)-1] == 'z')
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", retryPolicy(1, Retry503))
	if r := do(t, newClient(t), "PUT", "http://"+addr+"/", body); r.status != 200 || r.body != "4000 true" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
}
