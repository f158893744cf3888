package server

import (
	"strconv"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/metrics"
)

type apiMetrics struct {
	requests     *metrics.CounterVec
	latency      *metrics.HistogramVec
	authFailures *metrics.CounterVec
	throttled    *metrics.Counter
}

func newAPIMetrics(reg *metrics.Registry) *apiMetrics {
	m := &apiMetrics{
		requests: metrics.NewCounterVec("trellis_api_requests_total",
			"API requests by API, operation and HTTP status code.", "api", "operation", "code"),
		latency: metrics.NewHistogramVec("trellis_api_request_duration_seconds", "API request latency by API and operation.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}, "api", "operation"),
		authFailures: metrics.NewCounterVec("trellis_api_auth_failures_total",
			"API requests rejected by SigV4 authentication, by reason.", "reason"),
		throttled: metrics.NewCounter("trellis_api_throttled_total",
			"API requests refused with ThrottlingException (--rate-limit)."),
	}
	reg.MustRegister(m.requests, m.latency, m.authFailures, m.throttled)
	return m
}

func (m *apiMetrics) observer(api string) wire.Observer {
	return func(op string, status int, d time.Duration) {
		m.requests.With(api, op, strconv.Itoa(status)).Inc()
		m.latency.With(api, op).Observe(d.Seconds())
	}
}
