// Package loadgen is a constant-rate HTTP/1.1 load generator that records
// latency with coordinated-omission correction, in the manner of wrk2 (which
// Debian does not package).
//
// Requests are scheduled at fixed intended start times, start + i/Rate. A
// pool of Connections workers, each with its own keep-alive connection,
// takes the next intended time, waits for it, and sends. Latency is
// measured from the intended start, not from the actual send: when the
// server stalls, requests that should have gone out during the stall are
// charged the time they waited, as a real client at that rate would see.
// A closed-loop tool (wrk, h2load) instead slows down with the server and
// hides the stall from the percentiles.
//
// Every sample is kept (a 30 s run at 5,000 req/s is 150,000 durations),
// so percentiles are exact.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run.
type Config struct {
	// URL is requested with GET.
	URL string
	// Host, when set, is sent as the Host header (a proxy routing by name).
	Host string
	// Rate is the intended requests per second. Required.
	Rate float64
	// Duration of the measured run. Required.
	Duration time.Duration
	// Warmup runs at Rate before measuring; its samples are dropped.
	Warmup time.Duration
	// Connections is the number of keep-alive connections (and workers);
	// default 16, the setting of the published Istio runs.
	Connections int
	// Timeout bounds one request; default 5 s.
	Timeout time.Duration
}

// Result is what a run measured.
type Result struct {
	// Sent is the number of requests scheduled in the measured window.
	Sent int
	// Errors counts transport errors and non-2xx answers.
	Errors int
	// Achieved is the completed requests per second.
	Achieved float64
	// Latencies are the corrected latencies of successful requests, sorted.
	Latencies []time.Duration
}

// Percentile returns the q-quantile (0 < q <= 1) of the latencies, by the
// nearest-rank method; 0 when there are none.
func (r *Result) Percentile(q float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(q*float64(n)+0.999999999) - 1
	rank = max(0, min(rank, n-1))
	return r.Latencies[rank]
}

// Run performs one run; it returns early with ctx's error if ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("loadgen: rate and duration must be positive")
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		MaxIdleConns:        cfg.Connections,
		MaxIdleConnsPerHost: cfg.Connections,
		MaxConnsPerHost:     cfg.Connections,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	interval := time.Duration(float64(time.Second) / cfg.Rate)
	total := int64((cfg.Warmup + cfg.Duration) / interval)
	warm := int64(cfg.Warmup / interval)
	start := time.Now().Add(10 * time.Millisecond)
	var next atomic.Int64

	type sample struct {
		lat time.Duration
		ok  bool
	}
	samples := make([]sample, total)
	var wg sync.WaitGroup
	for range cfg.Connections {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				intended := start.Add(time.Duration(i) * interval)
				if d := time.Until(intended); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
				ok := get(ctx, client, cfg)
				samples[i] = sample{lat: time.Since(intended), ok: ok}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	measuredEnd := start.Add(time.Duration(total) * interval)
	res := &Result{Sent: int(total - warm)}
	var lastDone time.Time
	for i, s := range samples[warm:] {
		if !s.ok {
			res.Errors++
			continue
		}
		res.Latencies = append(res.Latencies, s.lat)
		done := start.Add(time.Duration(warm+int64(i))*interval + s.lat)
		if done.After(lastDone) {
			lastDone = done
		}
	}
	slices.Sort(res.Latencies)
	end := measuredEnd
	if lastDone.After(end) {
		end = lastDone
	}
	window := end.Sub(start.Add(time.Duration(warm) * interval))
	res.Achieved = float64(len(res.Latencies)) / window.Seconds()
	return res, nil
}

// get sends one request and reads the whole answer; it reports success (2xx).
func get(ctx context.Context, client *http.Client, cfg Config) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		return false
	}
	if cfg.Host != "" {
		req.Host = cfg.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300
}
