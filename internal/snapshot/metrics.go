package snapshot

import "github.com/trellis-mesh/trellis/internal/metrics"

// brokerMetrics of a Broker. The zero value (no registry) records nothing.
type brokerMetrics struct {
	builds      *metrics.CounterVec
	buildTime   *metrics.Histogram
	published   *metrics.Counter
	subscribers *metrics.Gauge
}

func newBrokerMetrics(reg *metrics.Registry) *brokerMetrics {
	if reg == nil {
		return &brokerMetrics{}
	}
	m := &brokerMetrics{
		builds: metrics.NewCounterVec("trellis_snapshot_builds_total",
			"Rebuilds of the snapshots of every VPC with a subscriber, by result (ok; error: a store or certificate failure).",
			"result"),
		buildTime: metrics.NewHistogram("trellis_snapshot_build_seconds",
			"Time to read the store and build the snapshots of every VPC with a subscriber.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
		published:   metrics.NewCounter("trellis_snapshots_published_total", "Snapshots published because their content changed."),
		subscribers: metrics.NewGauge("trellis_snapshot_subscribers", "Open snapshot subscriptions (node streams)."),
	}
	reg.MustRegister(m.builds, m.buildTime, m.published, m.subscribers)
	return m
}

func (m *brokerMetrics) build(ok bool, seconds float64) {
	if m.builds == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.builds.With(result).Inc()
	m.buildTime.Observe(seconds)
}

func (m *brokerMetrics) publish() {
	if m.published != nil {
		m.published.Inc()
	}
}

func (m *brokerMetrics) subscribed(delta int64) {
	if m.subscribers != nil {
		m.subscribers.Add(delta)
	}
}
