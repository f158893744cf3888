package snapshot

import "github.com/prometheus/client_golang/prometheus"

// metrics of a Broker. The zero value (no registry) records nothing.
type metrics struct {
	builds      *prometheus.CounterVec
	buildTime   prometheus.Histogram
	published   prometheus.Counter
	subscribers prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return &metrics{}
	}
	m := &metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_snapshot_builds_total",
			Help: "Rebuilds of the snapshots of every VPC with a subscriber, by result (ok; error: a store or certificate failure).",
		}, []string{"result"}),
		buildTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "trellis_snapshot_build_seconds",
			Help:    "Time to read the store and build the snapshots of every VPC with a subscriber.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_snapshots_published_total",
			Help: "Snapshots published because their content changed.",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_snapshot_subscribers",
			Help: "Open snapshot subscriptions (node streams).",
		}),
	}
	reg.MustRegister(m.builds, m.buildTime, m.published, m.subscribers)
	return m
}

func (m *metrics) build(ok bool, seconds float64) {
	if m.builds == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.builds.WithLabelValues(result).Inc()
	m.buildTime.Observe(seconds)
}

func (m *metrics) publish() {
	if m.published != nil {
		m.published.Inc()
	}
}

func (m *metrics) subscribed(delta float64) {
	if m.subscribers != nil {
		m.subscribers.Add(delta)
	}
}
