package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellis-mesh/trellis/internal/api/wire"
)

type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	throttled    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_api_requests_total", Help: "API requests by API, operation and HTTP status code.",
		}, []string{"api", "operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trellis_api_request_duration_seconds", Help: "API request latency by API and operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"api", "operation"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_api_auth_failures_total", Help: "API requests rejected by SigV4 authentication, by reason.",
		}, []string{"reason"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_api_throttled_total", Help: "API requests refused with ThrottlingException (--rate-limit).",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.authFailures, m.throttled)
	return m
}

func (m *metrics) observer(api string) wire.Observer {
	return func(op string, status int, d time.Duration) {
		m.requests.WithLabelValues(api, op, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(api, op).Observe(d.Seconds())
	}
}
