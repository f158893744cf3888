package egress

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestOutlierEjection: after Consecutive5xx failures in a row an endpoint
// gets no requests for BaseEjection, then it is tried again.
func TestOutlierEjection(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	flaky := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
		}
	})
	good := okBackend(t, "good")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{flaky.endpoint("flaky"), good.endpoint("good")})
	const base = time.Second
	pol := httpPolicy()
	pol.Outlier = OutlierPolicy{Consecutive5xx: 3, BaseEjection: base, MaxEjectionPercent: 50}
	addr := listen(t, p, "svc", pol)
	c := newClient(t)

	for flaky.hits.Load() < 3 {
		get(t, c, addr)
	}
	waitFor(t, "the ejection", func() bool { st, _ := p.Stats("svc"); return st.Ejected == 1 })
	ejectedAt := time.Now()
	if st, _ := p.Stats("svc"); st.Ejections != 1 {
		t.Fatalf("after 3 failures: %+v", st)
	}
	// While ejected, every request goes to the good endpoint. The check
	// stops well before the ejection ends, so that a slow machine does not
	// see the re-admission.
	before := flaky.hits.Load()
	for time.Since(ejectedAt) < base/2 {
		if r := get(t, c, addr); r.status != 200 {
			t.Fatalf("status %d while the flaky endpoint is ejected", r.status)
		}
	}
	if flaky.hits.Load() != before {
		t.Fatal("an ejected endpoint got a request")
	}
	// Re-admitted after the ejection time.
	failing.Store(false)
	waitFor(t, "re-admission", func() bool { st, _ := p.Stats("svc"); return st.Ejected == 0 })
	before = flaky.hits.Load()
	waitFor(t, "a request to the re-admitted endpoint", func() bool {
		get(t, c, addr)
		return flaky.hits.Load() > before
	})
}

// TestGatewayFailureEjection: ConsecutiveGatewayFailure counts 502-504
// and connect failures; a 500 in between starts it again.
func TestGatewayFailureEjection(t *testing.T) {
	p := New(Config{})
	s := p.serviceLocked("svc")
	s.eps.Store(buildSet(&endpointSet{}, []Endpoint{{Addr: "a:1"}, {Addr: "b:1"}}))
	pol := compile(Policy{Outlier: OutlierPolicy{ConsecutiveGatewayFailure: 3, BaseEjection: time.Hour, MaxEjectionPercent: 50}})
	ep := s.eps.Load().list[0]
	for _, st := range []int{502, 504, 500, 503, statusConnectFailure} {
		s.report(ep, st, pol)
	}
	if ep.ejected(p.now()) {
		t.Fatal("ejected although a 500 broke the run")
	}
	s.report(ep, 504, pol)
	if !ep.ejected(p.now()) {
		t.Fatal("not ejected after three gateway failures in a row")
	}
}

func TestEjectionTime(t *testing.T) {
	for _, tc := range []struct {
		base  time.Duration
		times int32
		want  time.Duration
	}{
		{30 * time.Second, 1, 30 * time.Second},
		{30 * time.Second, 3, 90 * time.Second},
		{30 * time.Second, 10, 300 * time.Second},
		{30 * time.Second, 1 << 30, 300 * time.Second},
		{400 * time.Second, 2, 400 * time.Second}, // a base above the cap is the cap
	} {
		if got := ejectionTime(tc.base, tc.times); got != tc.want {
			t.Errorf("ejectionTime(%v, %d) = %v, want %v", tc.base, tc.times, got, tc.want)
		}
	}
}

// TestEjectionGrowsAndDecays drives eject with a hand-made clock.
func TestEjectionGrowsAndDecays(t *testing.T) {
	p := New(Config{})
	s := p.serviceLocked("svc")
	s.eps.Store(buildSet(&endpointSet{}, []Endpoint{{Addr: "a:1"}, {Addr: "b:1"}}))
	ep := s.eps.Load().list[0]
	const base, interval = int64(time.Second), int64(10 * time.Second)
	pol := compile(Policy{Outlier: OutlierPolicy{Consecutive5xx: 1, BaseEjection: time.Second,
		Interval: 10 * time.Second, MaxEjectionPercent: 50}})

	now := int64(1000 * time.Second)
	for i, want := range []int64{1, 2, 3} { // ejected again as soon as re-admitted: grows
		if !s.eject(ep, now, pol) {
			t.Fatalf("ejection %d refused", i)
		}
		if got := ep.ejectedUntil.Load() - now; got != want*base {
			t.Fatalf("ejection %d lasts %v, want %v", i, time.Duration(got), time.Duration(want*base))
		}
		if s.eject(ep, now+1, pol) {
			t.Fatal("ejected twice at once")
		}
		now = ep.ejectedUntil.Load()
	}
	// Two intervals healthy: the count decays from 3 to 1, so the next
	// ejection is the second in a row.
	now += 2 * interval
	s.eject(ep, now, pol)
	if got := ep.ejectedUntil.Load() - now; got != 2*base {
		t.Fatalf("after decay the ejection lasts %v, want 2s", time.Duration(got))
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	for _, tc := range []struct {
		endpoints, percent, want int
	}{
		{1, 100, 0}, // the last endpoint is never ejected
		{2, 0, 1},   // one may always be
		{3, 10, 1},
		{10, 30, 3},
		{4, 100, 3},
	} {
		t.Run(fmt.Sprintf("%d endpoints %d%%", tc.endpoints, tc.percent), func(t *testing.T) {
			p := New(Config{})
			s := p.serviceLocked("svc")
			var eps []Endpoint
			for i := range tc.endpoints {
				eps = append(eps, Endpoint{Addr: fmt.Sprintf("10.0.0.%d:80", i)})
			}
			s.eps.Store(buildSet(&endpointSet{}, eps))
			pol := compile(Policy{Outlier: OutlierPolicy{Consecutive5xx: 1, BaseEjection: time.Hour, MaxEjectionPercent: tc.percent}})
			now := p.now()
			for _, ep := range s.eps.Load().list {
				s.eject(ep, now, pol)
			}
			if got := s.eps.Load().ejectedCount(now); got != tc.want {
				t.Fatalf("%d ejected, want %d", got, tc.want)
			}
		})
	}
}

// TestPickAllEjected: when every endpoint is ejected, one is used anyway
// and the record says so.
func TestPickAllEjected(t *testing.T) {
	set := buildSet(&endpointSet{}, []Endpoint{{Addr: "a:1"}, {Addr: "b:1"}, {Addr: "c:1"}})
	now := int64(time.Hour)
	for _, e := range set.list {
		e.ejectedUntil.Store(2 * now)
	}
	var tried triedSet
	e, all := set.pick(now, &tried)
	if e == nil || !all {
		t.Fatalf("pick = %v, %v", e, all)
	}
	// Retries still prefer an endpoint not tried.
	tried.add(e)
	if e2, _ := set.pick(now, &tried); e2 == e {
		t.Fatal("retry picked the same endpoint")
	}
	// A healthy endpoint already tried beats an ejected one not tried.
	set.list[1].ejectedUntil.Store(0)
	tried = triedSet{}
	tried.add(set.list[1])
	if e3, all := set.pick(now, &tried); e3 != set.list[1] || all {
		t.Fatalf("pick = %v (all ejected %v), want the healthy tried endpoint", e3.Addr, all)
	}
}

// TestAllEjectedRecord runs the panic path through the proxy.
func TestAllEjectedRecord(t *testing.T) {
	b := okBackend(t, "only")
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("only")})
	addr := listen(t, p, "svc", httpPolicy())
	svcOf(p, "svc").eps.Load().list[0].ejectedUntil.Store(p.now() + int64(time.Hour))
	if r := get(t, newClient(t), addr); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if got := rec.waitRequests(t, 1)[0]; !got.AllEjected {
		t.Fatalf("record %+v", got)
	}
}

// TestGRPCStatusFeedsOutlierDetection: a gRPC error in the trailers of a
// 200 counts as its HTTP equivalent.
func TestGRPCStatusFeedsOutlierDetection(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Write([]byte{0, 0, 0, 0, 0})
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "14")
	})
	other := okBackend(t, "other")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("grpc"), other.endpoint("other")})
	pol := Policy{Protocol: GRPC, Outlier: OutlierPolicy{Consecutive5xx: 2, BaseEjection: time.Hour, MaxEjectionPercent: 50}}
	addr := listen(t, p, "svc", pol)
	c := newH2CClient(t)
	for b.hits.Load() < 2 {
		do(t, c, "POST", "http://"+addr+"/pkg.Svc/Call", "\x00\x00\x00\x00\x00", "Content-Type", "application/grpc")
	}
	waitFor(t, "the ejection", func() bool { st, _ := p.Stats("svc"); return st.Ejections == 1 })
}
