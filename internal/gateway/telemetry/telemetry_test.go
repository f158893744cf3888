package telemetry

import (
	"bufio"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/proxy"
)

func newMetrics(t testing.TB) (*Metrics, *metrics.Registry) {
	t.Helper()
	reg := metrics.NewRegistry()
	m, err := New(Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// scrape fetches /metrics over HTTP, as Prometheus would, and returns each
// sample as "name{labels}" → value.
func scrape(t *testing.T, reg *metrics.Registry) (map[string]float64, string) {
	t.Helper()
	srv := httptest.NewServer(reg)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, string(body)
}

const (
	svc  = "svc-0123456789abcdef0"
	svc2 = "svc-0123456789abcdef1"
	tg   = "tg-0123456789abcdef0"
	tg2  = "tg-0123456789abcdef1"
)

func TestServiceAndTargetGroupMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	rec := func(r proxy.Record) *proxy.Record {
		if r.ListenerProtocol == "" {
			r.ListenerProtocol = "HTTPS"
		}
		return &r
	}
	for _, r := range []*proxy.Record{
		// A target's 200.
		rec(proxy.Record{ServiceID: svc, TargetGroupID: tg, Status: 200, Duration: 30 * time.Millisecond,
			ResponseFromTarget: 20 * time.Millisecond, BytesReceived: 100, BytesSent: 1000}),
		// A target's 503: a 5xx of the target, not Lattice's.
		rec(proxy.Record{ServiceID: svc, TargetGroupID: tg, Status: 503, Duration: 2 * time.Millisecond,
			ResponseFromTarget: time.Millisecond, BytesReceived: 10, BytesSent: 20}),
		// Auth denied: Lattice's 403, no target group.
		rec(proxy.Record{ServiceID: svc, Status: 403, Generated: true, Duration: time.Millisecond, AuthDeniedReason: "Service"}),
		// The target timed out: Lattice's 504.
		rec(proxy.Record{ServiceID: svc, TargetGroupID: tg, Status: 504, Generated: true, TimedOut: true,
			Duration: 5 * time.Second, FailureReason: "TargetTimeout"}),
		// No target could be reached: Lattice's 502, a connection error.
		rec(proxy.Record{ServiceID: svc, TargetGroupID: tg, Status: 502, Generated: true, Duration: time.Millisecond,
			FailureReason: "TargetConnectionError"}),
		// A fixed response of 418: generated, not one of Lattice's codes.
		rec(proxy.Record{ServiceID: svc, Status: 418, Generated: true}),
		// Unknown host.
		rec(proxy.Record{Status: 404, Generated: true, FailureReason: "NoMatchingService"}),
		// A TLS passthrough connection.
		rec(proxy.Record{ServiceID: svc2, TargetGroupID: tg2, ListenerProtocol: "TLS_PASSTHROUGH", BytesReceived: 5, BytesSent: 7,
			Duration: time.Second}),
	} {
		m.Observe(r)
	}
	got, text := scrape(t, reg)
	s := `{service="` + svc + `"}`
	g := `{target_group="` + tg + `"}`
	g2 := `{target_group="` + tg2 + `"}`
	want := map[string]float64{
		"vpclattice_service_requests_total" + s:                                                        6,
		`vpclattice_service_responses_total{code_class="2xx",service="` + svc + `"}`:                   1,
		`vpclattice_service_responses_total{code_class="3xx",service="` + svc + `"}`:                   0,
		`vpclattice_service_responses_total{code_class="4xx",service="` + svc + `"}`:                   2,
		`vpclattice_service_responses_total{code_class="5xx",service="` + svc + `"}`:                   3,
		`vpclattice_service_lattice_responses_total{code="400",service="` + svc + `"}`:                 0,
		`vpclattice_service_lattice_responses_total{code="403",service="` + svc + `"}`:                 1,
		`vpclattice_service_lattice_responses_total{code="404",service="` + svc + `"}`:                 0,
		`vpclattice_service_lattice_responses_total{code="418",service="` + svc + `"}`:                 1,
		`vpclattice_service_lattice_responses_total{code="429",service="` + svc + `"}`:                 0,
		`vpclattice_service_lattice_responses_total{code="500",service="` + svc + `"}`:                 0,
		`vpclattice_service_lattice_responses_total{code="502",service="` + svc + `"}`:                 1,
		`vpclattice_service_lattice_responses_total{code="504",service="` + svc + `"}`:                 1,
		"vpclattice_service_request_timeouts_total" + s:                                                1,
		"vpclattice_service_request_duration_seconds_count" + s:                                        6,
		`vpclattice_service_request_duration_seconds_bucket{service="` + svc + `",le="0.001"}`:         3,
		`vpclattice_service_request_duration_seconds_bucket{service="` + svc + `",le="0.0025"}`:        4,
		`vpclattice_service_request_duration_seconds_bucket{service="` + svc + `",le="0.05"}`:          5,
		`vpclattice_service_request_duration_seconds_bucket{service="` + svc + `",le="+Inf"}`:          6,
		"vpclattice_targetgroup_requests_total" + g:                                                    4,
		`vpclattice_targetgroup_responses_total{code_class="2xx",target_group="` + tg + `"}`:           1,
		`vpclattice_targetgroup_responses_total{code_class="3xx",target_group="` + tg + `"}`:           0,
		`vpclattice_targetgroup_responses_total{code_class="4xx",target_group="` + tg + `"}`:           0,
		`vpclattice_targetgroup_responses_total{code_class="5xx",target_group="` + tg + `"}`:           1,
		"vpclattice_targetgroup_request_duration_seconds_count" + g:                                    2,
		"vpclattice_targetgroup_request_duration_seconds_sum" + g:                                      0.021,
		"vpclattice_targetgroup_connection_errors_total" + g:                                           1,
		"vpclattice_targetgroup_connections_total" + g:                                                 0,
		"vpclattice_targetgroup_received_bytes_total" + g:                                              110,
		"vpclattice_targetgroup_sent_bytes_total" + g:                                                  1020,
		"vpclattice_targetgroup_requests_total" + g2:                                                   1,
		"vpclattice_targetgroup_connections_total" + g2:                                                1,
		"vpclattice_targetgroup_received_bytes_total" + g2:                                             5,
		"vpclattice_targetgroup_sent_bytes_total" + g2:                                                 7,
		"trellis_gateway_unmatched_requests_total":                                                     1,
		`vpclattice_service_request_duration_seconds_bucket{service="` + svc + `",le="10"}`:            6,
		`vpclattice_targetgroup_request_duration_seconds_bucket{target_group="` + tg + `",le="0.001"}`: 1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// A passthrough-only service has no request metrics (they are HTTP's).
	for k := range got {
		if strings.Contains(k, `service="`+svc2+`"`) {
			t.Errorf("passthrough service has %s", k)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}

	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestRetain(t *testing.T) {
	m, reg := newMetrics(t)
	for _, r := range []proxy.Record{
		{ServiceID: svc, TargetGroupID: tg, Status: 200},
		{ServiceID: svc2, TargetGroupID: tg2, Status: 200},
		{ServiceID: svc2, Status: 499, Generated: true},
	} {
		m.Observe(&r)
	}
	m.Retain([]string{svc}, []string{tg})
	got, _ := scrape(t, reg)
	for k := range got {
		if strings.Contains(k, svc2) || strings.Contains(k, tg2) {
			t.Errorf("retained %s", k)
		}
	}
	if got[`vpclattice_service_requests_total{service="`+svc+`"}`] != 1 || got[`vpclattice_targetgroup_requests_total{target_group="`+tg+`"}`] != 1 {
		t.Error("kept series lost their values")
	}
	// A forgotten service that comes back starts from zero.
	m.Observe(&proxy.Record{ServiceID: svc2, Status: 200})
	if got, _ := scrape(t, reg); got[`vpclattice_service_requests_total{service="`+svc2+`"}`] != 1 {
		t.Error("returning service not counted afresh")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a registry succeeded")
	}
	reg := metrics.NewRegistry()
	if _, err := New(Config{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registry: reg}); err == nil {
		t.Error("registering twice succeeded")
	}
}

func TestConcurrentObserve(t *testing.T) {
	m, reg := newMetrics(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := proxy.Record{ServiceID: []string{svc, svc2}[i%2], TargetGroupID: tg, Status: 200, ResponseFromTarget: time.Millisecond}
			for range 500 {
				m.Observe(&r)
			}
		})
	}
	wg.Go(func() { m.Retain([]string{svc, svc2}, []string{tg}) })
	wg.Wait()
	got, _ := scrape(t, reg)
	if n := got[`vpclattice_targetgroup_requests_total{target_group="`+tg+`"}`]; n != 4000 {
		t.Errorf("%v requests, want 4000", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	m, _ := newMetrics(b)
	recs := []proxy.Record{
		{ServiceID: svc, TargetGroupID: tg, ListenerProtocol: "HTTPS", Status: 200, Duration: 3 * time.Millisecond,
			ResponseFromTarget: 2 * time.Millisecond, BytesReceived: 300, BytesSent: 2000},
		{ServiceID: svc, ListenerProtocol: "HTTPS", Status: 403, Generated: true, Duration: time.Millisecond},
	}
	for i := range recs {
		m.Observe(&recs[i]) // resolve the series outside the loop
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Observe(&recs[i&1])
		i++
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	m, _ := newMetrics(b)
	rec := proxy.Record{ServiceID: svc, TargetGroupID: tg, ListenerProtocol: "HTTPS", Status: 200,
		Duration: 3 * time.Millisecond, ResponseFromTarget: 2 * time.Millisecond}
	m.Observe(&rec)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := rec
		for pb.Next() {
			m.Observe(&r)
		}
	})
}
