package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	r := &Result{}
	for i := 1; i <= 1000; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, time.Second}, {0.0001, time.Millisecond}} {
		if got := r.Percentile(c.q); got != c.want {
			t.Errorf("p%v = %v, want %v", c.q*100, got, c.want)
		}
	}
	if (&Result{}).Percentile(0.5) != 0 {
		t.Error("empty result has a percentile")
	}
}

func TestRunKeepsTheRateAndSendsHost(t *testing.T) {
	var n atomic.Int64
	var host atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		host.Store(r.Host)
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Host: "svc.example", Rate: 200, Duration: 500 * time.Millisecond,
		Warmup: 100 * time.Millisecond, Connections: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100 || res.Errors != 0 || len(res.Latencies) != 100 || n.Load() != 120 {
		t.Errorf("sent %d, errors %d, samples %d, server saw %d; want 100, 0, 100, 120 (with warm-up)", res.Sent, res.Errors, len(res.Latencies), n.Load())
	}
	if host.Load() != "svc.example" {
		t.Errorf("Host = %v", host.Load())
	}
	if res.Achieved < 150 || res.Achieved > 210 {
		t.Errorf("achieved %.0f req/s at a 200 req/s schedule", res.Achieved)
	}
}

// TestRunChargesStalls: a server that stalls once makes the requests
// scheduled during the stall slow too (coordinated-omission correction).
func TestRunChargesStalls(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 20 {
			time.Sleep(200 * time.Millisecond)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: time.Second, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	// One connection at 100 req/s: the ~20 requests due during the 200 ms
	// stall all wait, so p90 is far above the server's normal speed. An
	// uncorrected measurement would show one slow request (p99 only).
	if p90 := res.Percentile(0.9); p90 < 50*time.Millisecond {
		t.Errorf("p90 = %v; the stall was not charged to the requests behind it", p90)
	}
	if res.Errors != 0 {
		t.Errorf("errors: %d", res.Errors)
	}
}

func TestRunCountsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != res.Sent || len(res.Latencies) != 0 {
		t.Errorf("errors %d of %d, samples %d", res.Errors, res.Sent, len(res.Latencies))
	}
	if _, err := Run(context.Background(), Config{URL: srv.URL}); err == nil {
		t.Error("a run without rate was accepted")
	}
}
