package health

import (
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// scale turns the 5 s minimum interval into 100 ms.
const scale = 0.02

// eventually polls cond every 5 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backend is a real HTTP server whose answer the test controls.
type backend struct {
	srv      *httptest.Server
	code     atomic.Int32
	delay    atomic.Int64 // nanoseconds; the handler returns early if the client gives up
	reqs     atomic.Int32
	oks      atomic.Int32
	fails    atomic.Int32
	newConns atomic.Int32
	closed   atomic.Int32

	mu    sync.Mutex
	last  *http.Request
	times []time.Time
}

type backendOpts struct {
	tls, h2 bool
	path    string // only this path answers code; others 404 ("" = any)
}

func newBackend(t *testing.T, o backendOpts) *backend {
	t.Helper()
	b := &backend{}
	b.code.Store(200)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.last = r.Clone(r.Context())
		b.times = append(b.times, time.Now())
		b.mu.Unlock()
		b.reqs.Add(1)
		if d := time.Duration(b.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		code := int(b.code.Load())
		if o.path != "" && r.URL.Path != o.path {
			code = http.StatusNotFound
		}
		if code >= 200 && code < 300 {
			b.oks.Add(1)
		} else {
			b.fails.Add(1)
		}
		w.WriteHeader(code)
	})
	b.srv = httptest.NewUnstartedServer(h)
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.newConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.closed.Add(1)
		}
	}
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake errors are expected
	switch {
	case o.tls:
		b.srv.EnableHTTP2 = o.h2
		b.srv.StartTLS()
	case o.h2:
		b.srv.Config.Protocols = new(http.Protocols)
		b.srv.Config.Protocols.SetHTTP1(true)
		b.srv.Config.Protocols.SetUnencryptedHTTP2(true)
		b.srv.Start()
	default:
		b.srv.Start()
	}
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *backend) target() snapshot.Target { return targetAt(b.srv.Listener.Addr().String()) }

func targetAt(addr string) snapshot.Target {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return snapshot.Target{ID: host, Port: int32(p), Address: addr, Status: "INITIAL", Reason: ReasonInitial}
}

type hcOpt func(*model.HealthCheckConfig)

func i32(v int32) *int32   { return &v }
func str(v string) *string { return &v }

// hc is a materialised config with 5 s interval and timeout (100 ms here).
func hc(opts ...hcOpt) *model.HealthCheckConfig {
	on := true
	h := &model.HealthCheckConfig{Enabled: &on, Protocol: model.ProtocolHTTP, ProtocolVersion: model.ProtocolVersionHTTP1,
		Path: str("/"), HealthCheckIntervalSeconds: i32(5), HealthCheckTimeoutSeconds: i32(5),
		HealthyThresholdCount: i32(5), UnhealthyThresholdCount: i32(2), Matcher: &model.Matcher{HTTPCode: str("200")}}
	for _, o := range opts {
		o(h)
	}
	return h
}

func group(id string, checked bool, h *model.HealthCheckConfig, targets ...snapshot.Target) snapshot.TargetGroup {
	return snapshot.TargetGroup{ID: id, ARN: "arn:aws:vpc-lattice:us-east-1:111122223333:targetgroup/" + id, Type: "IP",
		Protocol: "HTTP", ProtocolVersion: "HTTP1", Checked: checked, HealthCheck: h, Targets: targets}
}

// events records OnChange calls.
type events struct {
	mu   sync.Mutex
	list []snapshot.TargetHealth
}

func (e *events) add(h snapshot.TargetHealth) {
	e.mu.Lock()
	e.list = append(e.list, h)
	e.mu.Unlock()
}

func (e *events) statuses() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, h := range e.list {
		out = append(out, h.Status+"/"+h.Reason)
	}
	return out
}

func newTestChecker(t *testing.T, ev *events) *Checker {
	t.Helper()
	c := NewChecker(Config{Logger: slog.New(slog.DiscardHandler), OnChange: ev.add, IntervalScale: scale})
	t.Cleanup(c.Close)
	return c
}

func TestCheckerFirstCheckMakesHealthy(t *testing.T) {
	b := newBackend(t, backendOpts{})
	ev := &events{}
	c := newTestChecker(t, ev)
	tg := group("tg-1", true, hc(), b.target())
	key := b.target().Key("tg-1")
	st := c.State(key)
	start := time.Now()
	c.Update([]snapshot.TargetGroup{tg})
	if got := st.Load(); got != Initial {
		t.Fatalf("status before any check %v, want INITIAL", got)
	}
	eventually(t, 5*time.Second, func() bool { return st.Load() == Healthy }, "target never HEALTHY")
	// Healthy threshold is 5, but a new target needs one passing check.
	if n := b.reqs.Load(); n != 1 {
		t.Errorf("became healthy after %d checks, want 1", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("first check took %v, want prompt", d)
	}
	if got, want := ev.statuses(), []string{"HEALTHY/"}; !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	r := b.lastRequest()
	if r.Method != http.MethodGet || r.URL.Path != "/" || r.UserAgent() != userAgent || !r.Close || r.ProtoMajor != 1 {
		t.Errorf("check request %s %s ua=%q close=%v proto=%s", r.Method, r.URL, r.UserAgent(), r.Close, r.Proto)
	}
	if c.State(key) != st {
		t.Error("State pointer changed")
	}
	if got := c.Report(); len(got) != 1 || got[0].Status != "HEALTHY" || got[0].TargetGroupID != "tg-1" || got[0].Port != b.target().Port {
		t.Errorf("Report %+v", got)
	}
}

func TestCheckerThresholds(t *testing.T) {
	b := newBackend(t, backendOpts{})
	b.code.Store(500)
	ev := &events{}
	c := newTestChecker(t, ev)
	c.Update([]snapshot.TargetGroup{group("tg-1", true, hc(func(h *model.HealthCheckConfig) {
		h.HealthyThresholdCount, h.UnhealthyThresholdCount = i32(2), i32(3)
	}), b.target())})
	st := c.State(b.target().Key("tg-1"))
	eventually(t, 5*time.Second, func() bool { return st.Load() == Unhealthy }, "never UNHEALTHY")
	if f := b.fails.Load(); f < 3 {
		t.Errorf("UNHEALTHY after %d failed checks, want 3", f)
	}
	oks, fails := b.oks.Load(), b.fails.Load()
	b.code.Store(200)
	eventually(t, 5*time.Second, func() bool { return st.Load() == Healthy }, "never recovered")
	if got := b.oks.Load() - oks; got < 2 {
		t.Errorf("HEALTHY after %d passing checks, want 2", got)
	}
	b.code.Store(503)
	eventually(t, 5*time.Second, func() bool { return st.Load() == Unhealthy }, "never UNHEALTHY again")
	if got := b.fails.Load() - fails; got < 3 {
		t.Errorf("UNHEALTHY after %d failed checks, want 3", got)
	}
	want := []string{"UNHEALTHY/" + ReasonResponseCodeMismatch, "HEALTHY/", "UNHEALTHY/" + ReasonResponseCodeMismatch}
	if got := ev.statuses(); !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
}

func TestCheckerFailureReasons(t *testing.T) {
	refused := func(t *testing.T) snapshot.Target {
		return targetAt(testnet.FreeAddr(t)) // refuses connections until the test ends
	}
	for _, tc := range []struct {
		name   string
		code   int32
		delay  time.Duration
		opt    hcOpt
		target func(t *testing.T, b *backend) snapshot.Target
		want   Status
		reason string
	}{
		{name: "code mismatch", code: 404, want: Unhealthy, reason: ReasonResponseCodeMismatch},
		{name: "list rejects", code: 201, opt: func(h *model.HealthCheckConfig) { h.Matcher.HTTPCode = str("200,202") },
			want: Unhealthy, reason: ReasonResponseCodeMismatch},
		{name: "list accepts", code: 202, opt: func(h *model.HealthCheckConfig) { h.Matcher.HTTPCode = str("200,202") }, want: Healthy},
		{name: "range accepts", code: 204, opt: func(h *model.HealthCheckConfig) { h.Matcher.HTTPCode = str("200-299") }, want: Healthy},
		{name: "redirect is a code", code: 302, opt: func(h *model.HealthCheckConfig) { h.Matcher.HTTPCode = str("300-399") }, want: Healthy},
		{name: "timeout", code: 200, delay: 2 * time.Second,
			opt: func(h *model.HealthCheckConfig) { h.HealthCheckTimeoutSeconds = i32(2) }, want: Unhealthy, reason: ReasonTimeout},
		{name: "connection refused", target: func(t *testing.T, _ *backend) snapshot.Target { return refused(t) },
			want: Unhealthy, reason: ReasonFailedHealthChecks},
		{name: "no address", target: func(t *testing.T, b *backend) snapshot.Target { x := b.target(); x.Address = ""; return x },
			want: Unhealthy, reason: ReasonInvalidState},
		{name: "TLS to plain HTTP", target: func(t *testing.T, b *backend) snapshot.Target { return b.target() },
			opt: func(h *model.HealthCheckConfig) { h.Protocol = model.ProtocolHTTPS }, want: Unhealthy, reason: ReasonFailedHealthChecks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, backendOpts{})
			b.code.Store(tc.code)
			b.delay.Store(int64(tc.delay))
			target := b.target()
			if tc.target != nil {
				target = tc.target(t, b)
			}
			h := hc()
			if tc.opt != nil {
				tc.opt(h)
			}
			ev := &events{}
			c := newTestChecker(t, ev)
			c.Update([]snapshot.TargetGroup{group("tg-1", true, h, target)})
			st := c.State(target.Key("tg-1"))
			eventually(t, 5*time.Second, func() bool { return st.Load() == tc.want }, "status %v, want %v", st.Load(), tc.want)
			rep := c.Report()
			if len(rep) != 1 || rep[0].Reason != tc.reason {
				t.Errorf("report %+v, want reason %q", rep, tc.reason)
			}
		})
	}
}

func TestCheckerProtocols(t *testing.T) {
	for _, tc := range []struct {
		name            string
		tls, h2         bool
		protocol, proto string
	}{
		{"HTTP/HTTP1", false, false, model.ProtocolHTTP, model.ProtocolVersionHTTP1},
		{"HTTP/HTTP2 (h2c)", false, true, model.ProtocolHTTP, model.ProtocolVersionHTTP2},
		{"HTTPS/HTTP1 self-signed", true, false, model.ProtocolHTTPS, model.ProtocolVersionHTTP1},
		{"HTTPS/HTTP2 self-signed", true, true, model.ProtocolHTTPS, model.ProtocolVersionHTTP2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, backendOpts{tls: tc.tls, h2: tc.h2})
			ev := &events{}
			c := newTestChecker(t, ev)
			// A TCP group whose checks are enabled uses the check's protocol.
			g := group("tg-1", true, hc(func(h *model.HealthCheckConfig) { h.Protocol, h.ProtocolVersion = tc.protocol, tc.proto }), b.target())
			g.Protocol, g.ProtocolVersion = model.ProtocolTCP, ""
			c.Update([]snapshot.TargetGroup{g})
			st := c.State(b.target().Key("tg-1"))
			eventually(t, 5*time.Second, func() bool { return st.Load() == Healthy }, "never HEALTHY")
			r := b.lastRequest()
			wantMajor := 1
			if tc.h2 {
				wantMajor = 2
			}
			if r.ProtoMajor != wantMajor || (r.TLS != nil) != tc.tls {
				t.Errorf("check arrived as %s tls=%v", r.Proto, r.TLS != nil)
			}
			// Every check opens its own connection and closes it.
			eventually(t, 5*time.Second, func() bool { return b.reqs.Load() >= 3 && b.closed.Load() >= 2 }, "fewer than 3 checks")
			reqs := b.reqs.Load()
			if conns := b.newConns.Load(); conns < reqs {
				t.Errorf("%d checks over %d connections: connections reused", reqs, conns)
			}
		})
	}
}

func TestCheckerPortAndPath(t *testing.T) {
	b := newBackend(t, backendOpts{path: "/hc/ready"})
	target := targetAt("127.0.0.1:1") // traffic port: nothing listens there
	c := newTestChecker(t, &events{})
	c.Update([]snapshot.TargetGroup{group("tg-1", true, hc(func(h *model.HealthCheckConfig) {
		h.Port, h.Path = i32(b.target().Port), str("/hc/ready?deep=1")
	}), target)})
	st := c.State(target.Key("tg-1"))
	eventually(t, 5*time.Second, func() bool { return st.Load() == Healthy }, "never HEALTHY on the check port")
	if r := b.lastRequest(); r.URL.RawQuery != "deep=1" {
		t.Errorf("query %q", r.URL.RawQuery)
	}
}

func TestCheckerIntervalIgnoresResponseTime(t *testing.T) {
	b := newBackend(t, backendOpts{})
	b.delay.Store(int64(60 * time.Millisecond))
	c := NewChecker(Config{IntervalScale: 0.05}) // 250 ms interval, 200 ms timeout
	t.Cleanup(c.Close)
	c.Update([]snapshot.TargetGroup{group("tg-1", true, hc(func(h *model.HealthCheckConfig) {
		h.HealthCheckTimeoutSeconds = i32(4)
	}), b.target())})
	eventually(t, 10*time.Second, func() bool { return b.reqs.Load() >= 6 }, "fewer than 6 checks")
	b.mu.Lock()
	times := slices.Clone(b.times)
	b.mu.Unlock()
	avg := times[len(times)-1].Sub(times[0]) / time.Duration(len(times)-1)
	// Interval plus response time would be 310 ms.
	if avg < 200*time.Millisecond || avg > 290*time.Millisecond {
		t.Errorf("average gap between checks %v, want about 250ms", avg)
	}
}

func TestCheckerUpdate(t *testing.T) {
	b := newBackend(t, backendOpts{path: "/"})
	other := newBackend(t, backendOpts{})
	ev := &events{}
	c := newTestChecker(t, ev)
	tgt := b.target()
	key := tgt.Key("tg-1")
	st := c.State(key) // the router may ask before the first Update

	// Not checked here: the snapshot's status rules; nobody is probed.
	remote := []snapshot.Target{targetAt("10.1.0.1:80"), targetAt("10.1.0.2:80"), targetAt("10.1.0.3:80")}
	remote[0].Status, remote[1].Status, remote[2].Status = "HEALTHY", "UNHEALTHY", ""
	c.Update([]snapshot.TargetGroup{group("tg-1", false, hc(), tgt), group("tg-remote", false, hc(), remote...)})
	for i, want := range []Status{Healthy, Unhealthy, Initial} {
		if got := c.State(remote[i].Key("tg-remote")).Load(); got != want {
			t.Errorf("remote target %d: %v, want %v", i, got, want)
		}
	}

	// Checked but disabled: UNAVAILABLE, reported.
	off := hc(func(h *model.HealthCheckConfig) { h.Enabled = new(bool) })
	lambda := group("tg-lambda", true, nil, snapshot.Target{ID: "arn:aws:lambda:us-east-1:111122223333:function:f", Status: "UNAVAILABLE", Reason: ReasonHealthCheckDisabled})
	c.Update([]snapshot.TargetGroup{group("tg-1", true, off, tgt), lambda})
	if st.Load() != Unavailable || c.State(lambda.Targets[0].Key("tg-lambda")).Load() != Unavailable {
		t.Fatalf("disabled checks: %v", st.Load())
	}
	if got, want := ev.statuses(), []string{"UNAVAILABLE/" + ReasonHealthCheckDisabled}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v (the lambda target was already UNAVAILABLE)", got, want)
	}
	if n := b.reqs.Load() + other.reqs.Load(); n != 0 {
		t.Fatalf("%d checks sent to targets that are not checked here", n)
	}

	// Enabled: starts over from INITIAL.
	on := hc(func(h *model.HealthCheckConfig) { h.UnhealthyThresholdCount = i32(3) })
	c.Update([]snapshot.TargetGroup{group("tg-1", true, on, tgt)})
	eventually(t, 5*time.Second, func() bool { return st.Load() == Healthy }, "never HEALTHY")
	want := []string{"UNAVAILABLE/" + ReasonHealthCheckDisabled, "INITIAL/" + ReasonInitial, "HEALTHY/"}
	if got := ev.statuses(); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}

	// A config change keeps the status: the new path fails, but only the
	// unhealthy threshold turns the target UNHEALTHY.
	moved := hc(func(h *model.HealthCheckConfig) { h.UnhealthyThresholdCount, h.Path = i32(3), str("/gone") })
	before := b.fails.Load()
	c.Update([]snapshot.TargetGroup{group("tg-1", true, moved, tgt)})
	if st.Load() != Healthy {
		t.Fatalf("config change reset status to %v", st.Load())
	}
	eventually(t, 5*time.Second, func() bool { return st.Load() == Unhealthy }, "never UNHEALTHY on the new path")
	if n := b.fails.Load() - before; n < 3 {
		t.Errorf("UNHEALTHY after %d failures, want 3", n)
	}
	if c.State(key) != st {
		t.Error("State pointer changed across updates")
	}

	// A new checked target seeded UNHEALTHY by the snapshot (a restarted
	// node) needs the healthy threshold, not one check.
	seeded := other.target()
	seeded.Status, seeded.Reason = "UNHEALTHY", ReasonTimeout
	c.Update([]snapshot.TargetGroup{group("tg-1", true, moved, tgt), group("tg-2", true, hc(func(h *model.HealthCheckConfig) {
		h.HealthyThresholdCount = i32(3)
	}), seeded)})
	st2 := c.State(seeded.Key("tg-2"))
	eventually(t, 5*time.Second, func() bool { return st2.Load() == Healthy }, "seeded target never HEALTHY")
	if n := other.oks.Load(); n < 3 {
		t.Errorf("seeded UNHEALTHY target HEALTHY after %d checks, want 3", n)
	}

	// Removed: checks stop and the state is forgotten.
	c.Update([]snapshot.TargetGroup{group("tg-2", true, hc(func(h *model.HealthCheckConfig) { h.HealthyThresholdCount = i32(3) }), seeded)})
	n := b.reqs.Load()
	time.Sleep(400 * time.Millisecond) // four intervals: absence of checks can only be waited for
	if got := b.reqs.Load(); got > n+1 {
		t.Errorf("removed target still checked: %d more checks", got-n)
	}
	if c.State(key) == st {
		t.Error("removed target kept its State")
	}
	// The entry State(key) just created is not reported until an Update
	// seeds it.
	if rep := c.Report(); len(rep) != 1 || rep[0].TargetGroupID != "tg-2" || rep[0].Status != "HEALTHY" {
		t.Errorf("report %+v", rep)
	}
}

func TestCheckerCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		plain := newBackend(t, backendOpts{})
		h2 := newBackend(t, backendOpts{tls: true, h2: true})
		h2c := newBackend(t, backendOpts{h2: true})
		slow := newBackend(t, backendOpts{})
		slow.delay.Store(int64(time.Hour))
		c := NewChecker(Config{IntervalScale: scale})
		c.Update([]snapshot.TargetGroup{
			group("tg-1", true, hc(), plain.target(), slow.target()),
			group("tg-2", true, hc(func(h *model.HealthCheckConfig) { h.Protocol, h.ProtocolVersion = "HTTPS", "HTTP2" }), h2.target()),
			group("tg-3", true, hc(func(h *model.HealthCheckConfig) { h.ProtocolVersion = "HTTP2" }), h2c.target()),
		})
		eventually(t, 5*time.Second, func() bool {
			return plain.reqs.Load() >= 2 && h2.reqs.Load() >= 2 && h2c.reqs.Load() >= 2 && slow.reqs.Load() >= 1
		}, "checks did not run")
		c.Close()
		c.Close() // idempotent
		c.Update([]snapshot.TargetGroup{group("tg-1", true, hc(), plain.target())})
		n := plain.reqs.Load()
		plain.srv.Close()
		h2.srv.Close()
		h2c.srv.Close()
		slow.srv.Close()
		if plain.reqs.Load() != n {
			t.Error("Update after Close started checks")
		}
	}()
	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base }, "goroutines: %d, before %d\n%s",
		runtime.NumGoroutine(), base, stacks())
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
