// Package telemetry turns the proxy's finished requests into Prometheus
// metrics named after VPC Lattice's CloudWatch metrics (namespace
// AWS/VpcLattice): per service and per target group, as docs/metrics.md
// maps them.
//
// Metrics implements proxy.Observer. Observe runs on the request's
// goroutine, so it is cheap: the counters and histograms of a service or
// target group are resolved once, on its first request, and cached by ID
// (a sync.Map, read without locks); after that a request costs a few atomic
// adds and no allocation. A service's or group's series all appear with its
// first request, zeros included, as Lattice reports metrics "from first
// traffic even when 0". Retain drops the series of services and groups a
// new snapshot no longer has.
package telemetry

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/proxy"
)

// defaultBuckets are the request-time histogram buckets, in seconds: from
// 1 ms to a minute, Lattice's default idle timeout.
var defaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// latticeCodes are the codes Lattice publishes HTTPCode_VpcLattice_<code>_Count
// for; their series exist from a service's first request.
var latticeCodes = [...]int{400, 403, 404, 429, 500, 502, 504}

// classes are the response classes of HTTPCode_<n>XX_Count.
var classes = [...]string{"2xx", "3xx", "4xx", "5xx"}

// Config configures Metrics.
type Config struct {
	// Registry receives the metrics. Required.
	Registry *metrics.Registry
	// Buckets of the request-time histograms, in seconds. Default: 1 ms,
	// 2.5 ms, 5 ms ... 10 s, 30 s, 60 s (15 buckets); more buckets mean
	// finer quantiles and more series.
	Buckets []float64
}

// Metrics records Lattice's service and target-group metrics. Safe for
// concurrent use.
type Metrics struct {
	svcRequests  *metrics.CounterVec
	svcResponses *metrics.CounterVec
	svcGenerated *metrics.CounterVec
	svcTime      *metrics.HistogramVec
	svcTimeouts  *metrics.CounterVec

	tgRequests  *metrics.CounterVec
	tgResponses *metrics.CounterVec
	tgTime      *metrics.HistogramVec
	tgConns     *metrics.CounterVec
	tgConnErrs  *metrics.CounterVec
	tgRecvBytes *metrics.CounterVec
	tgSentBytes *metrics.CounterVec

	unmatched *metrics.Counter

	services sync.Map // service ID → *serviceSeries
	groups   sync.Map // target group ID → *groupSeries
	mu       sync.Mutex
}

// serviceSeries are one service's resolved series.
type serviceSeries struct {
	requests  *metrics.Counter
	responses [len(classes)]*metrics.Counter
	generated [len(latticeCodes)]*metrics.Counter
	time      *metrics.Histogram
	timeouts  *metrics.Counter
}

// groupSeries are one target group's resolved series.
type groupSeries struct {
	requests  *metrics.Counter
	responses [len(classes)]*metrics.Counter
	time      *metrics.Histogram
	conns     *metrics.Counter
	connErrs  *metrics.Counter
	recvBytes *metrics.Counter
	sentBytes *metrics.Counter
}

var _ proxy.Observer = (*Metrics)(nil)

// New registers the metrics on cfg.Registerer.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registry == nil {
		return nil, fmt.Errorf("telemetry: no registry")
	}
	if len(cfg.Buckets) == 0 {
		cfg.Buckets = defaultBuckets
	}
	svc := []string{"service"}
	tg := []string{"target_group"}
	counter := func(name, help string, labels ...string) *metrics.CounterVec {
		return metrics.NewCounterVec("vpclattice_"+name, help, labels...)
	}
	histogram := func(name, help string, labels []string) *metrics.HistogramVec {
		return metrics.NewHistogramVec("vpclattice_"+name, help, cfg.Buckets, labels...)
	}
	m := &Metrics{
		svcRequests:  counter("service_requests_total", "Requests to the service (TotalRequestCount).", svc...),
		svcResponses: counter("service_responses_total", "Responses by class, wherever generated (HTTPCode_2XX..5XX_Count).", "service", "code_class"),
		svcGenerated: counter("service_lattice_responses_total", "Responses the gateway generated itself, by code (HTTPCode_VpcLattice_<code>_Count).", "service", "code"),
		svcTime:      histogram("service_request_duration_seconds", "Time from a request's arrival to the end of its response (RequestTime).", svc),
		svcTimeouts:  counter("service_request_timeouts_total", "Requests that timed out waiting for the target (RequestTimeoutCount).", svc...),

		tgRequests:  counter("targetgroup_requests_total", "Requests and TLS passthrough connections forwarded to the group (TotalRequestCount).", tg...),
		tgResponses: counter("targetgroup_responses_total", "Responses from the group's targets by class (HTTPCode_2XX..5XX_Count).", "target_group", "code_class"),
		tgTime:      histogram("targetgroup_request_duration_seconds", "Time from sending a request to a target until its response headers (RequestTime).", tg),
		tgConns:     counter("targetgroup_connections_total", "TLS passthrough connections to the group's targets (TotalConnectionCount).", tg...),
		tgConnErrs:  counter("targetgroup_connection_errors_total", "Requests and connections that could not connect to a target (ConnectionErrorCount).", tg...),
		tgRecvBytes: counter("targetgroup_received_bytes_total", "Bytes received from clients for the group (TotalReceivedConnectionBytes).", tg...),
		tgSentBytes: counter("targetgroup_sent_bytes_total", "Bytes sent to clients from the group (TotalSentConnectionBytes).", tg...),

		unmatched: metrics.NewCounter("trellis_gateway_unmatched_requests_total",
			"Requests that matched no service (answered by the gateway with 404 or a closed connection)."),
	}
	if err := cfg.Registry.Register(m.svcRequests, m.svcResponses, m.svcGenerated, m.svcTime, m.svcTimeouts,
		m.tgRequests, m.tgResponses, m.tgTime, m.tgConns, m.tgConnErrs, m.tgRecvBytes, m.tgSentBytes, m.unmatched); err != nil {
		return nil, fmt.Errorf("telemetry: register: %w", err)
	}
	return m, nil
}

// Observe records one finished request or TLS passthrough connection.
func (m *Metrics) Observe(rec *proxy.Record) {
	passthrough := rec.ListenerProtocol == "TLS_PASSTHROUGH"
	if rec.ServiceID == "" {
		m.unmatched.Inc()
	} else if !passthrough {
		s := m.service(rec.ServiceID)
		s.requests.Inc()
		if i := class(rec.Status); i >= 0 {
			s.responses[i].Inc()
		}
		if rec.Generated {
			m.generated(s, rec.ServiceID, rec.Status)
		}
		s.time.Observe(rec.Duration.Seconds())
		if rec.TimedOut {
			s.timeouts.Inc()
		}
	}
	if rec.TargetGroupID == "" {
		return
	}
	g := m.group(rec.TargetGroupID)
	g.requests.Inc()
	g.recvBytes.Add(uint64(max(rec.BytesReceived, 0)))
	g.sentBytes.Add(uint64(max(rec.BytesSent, 0)))
	if rec.FailureReason == "TargetConnectionError" {
		g.connErrs.Inc()
	}
	if passthrough {
		g.conns.Inc()
		return
	}
	if !rec.Generated {
		if i := class(rec.Status); i >= 0 {
			g.responses[i].Inc()
		}
	}
	if rec.ResponseFromTarget > 0 {
		g.time.Observe(rec.ResponseFromTarget.Seconds())
	}
}

// generated counts a gateway-generated response: a Lattice code from the
// cached series, any other code through the vector (rare: allocates).
func (m *Metrics) generated(s *serviceSeries, id string, code int) {
	for i, c := range latticeCodes {
		if c == code {
			s.generated[i].Inc()
			return
		}
	}
	if code > 0 {
		m.svcGenerated.With(id, strconv.Itoa(code)).Inc()
	}
}

// class maps a status code to its index in classes, or -1 (1xx, 0).
func class(code int) int {
	if code < 200 || code > 599 {
		return -1
	}
	return code/100 - 2
}

func (m *Metrics) service(id string) *serviceSeries {
	if v, ok := m.services.Load(id); ok {
		return v.(*serviceSeries)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.services.Load(id); ok {
		return v.(*serviceSeries)
	}
	s := &serviceSeries{
		requests: m.svcRequests.With(id),
		time:     m.svcTime.With(id),
		timeouts: m.svcTimeouts.With(id),
	}
	for i, c := range classes {
		s.responses[i] = m.svcResponses.With(id, c)
	}
	for i, c := range latticeCodes {
		s.generated[i] = m.svcGenerated.With(id, strconv.Itoa(c))
	}
	m.services.Store(id, s)
	return s
}

func (m *Metrics) group(id string) *groupSeries {
	if v, ok := m.groups.Load(id); ok {
		return v.(*groupSeries)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.groups.Load(id); ok {
		return v.(*groupSeries)
	}
	g := &groupSeries{
		requests:  m.tgRequests.With(id),
		time:      m.tgTime.With(id),
		conns:     m.tgConns.With(id),
		connErrs:  m.tgConnErrs.With(id),
		recvBytes: m.tgRecvBytes.With(id),
		sentBytes: m.tgSentBytes.With(id),
	}
	for i, c := range classes {
		g.responses[i] = m.tgResponses.With(id, c)
	}
	m.groups.Store(id, g)
	return g
}

// Retain deletes the series of every service and target group not named,
// so a deleted service stops being exported. The gateway calls it with
// the IDs of each snapshot it applies. A request in flight for a deleted
// service may recreate its series once; the next Retain removes them.
func (m *Metrics) Retain(serviceIDs, targetGroupIDs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := func(ids []string) map[string]bool {
		set := make(map[string]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		return set
	}
	svcs, groups := keep(serviceIDs), keep(targetGroupIDs)
	m.services.Range(func(k, _ any) bool {
		id := k.(string)
		if !svcs[id] {
			m.services.Delete(id)
			for _, v := range []interface{ Delete(label, value string) int }{
				m.svcRequests, m.svcResponses, m.svcGenerated, m.svcTime, m.svcTimeouts} {
				v.Delete("service", id)
			}
		}
		return true
	})
	m.groups.Range(func(k, _ any) bool {
		id := k.(string)
		if !groups[id] {
			m.groups.Delete(id)
			for _, v := range []interface{ Delete(label, value string) int }{
				m.tgRequests, m.tgResponses, m.tgTime, m.tgConns, m.tgConnErrs, m.tgRecvBytes, m.tgSentBytes} {
				v.Delete("target_group", id)
			}
		}
		return true
	})
}
