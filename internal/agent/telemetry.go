package agent

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/agent/config"
	"github.com/trellis-mesh/trellis/internal/agent/egress"
	"github.com/trellis-mesh/trellis/internal/metrics"
)

// telemetry turns the proxies' records into ECS Service Connect's metrics
// (reference §4.1) on a Prometheus registry, and into access-log lines.
//
// Inbound metrics (ingress, by discovery_name) are ActiveConnectionCount,
// NewConnectionCount, ProcessedBytes, RequestCount and GrpcRequestCount;
// outbound ones (egress, by target_discovery_name, the client-side view)
// are HTTPCode_Target_<n>XX_Count, TargetProcessedBytes,
// TargetResponseTime and RequestCount. docs/agent.md has the table.
type telemetry struct {
	activeConns   *metrics.GaugeVec
	newConns      *metrics.CounterVec
	bytes         *metrics.CounterVec
	requests      *metrics.CounterVec
	grpcRequests  *metrics.CounterVec
	targetCodes   *metrics.CounterVec
	targetBytes   *metrics.CounterVec
	targetTime    *metrics.HistogramVec
	targetReqs    *metrics.CounterVec
	retries       *metrics.CounterVec
	log           *accessLog // nil when access logs are off
	inbound       egress.Observer
	outbound      egress.Observer
	codeClassName [6]string
}

func newTelemetry(reg *metrics.Registry, al *accessLog) *telemetry {
	t := &telemetry{log: al, codeClassName: [6]string{"", "1XX", "2XX", "3XX", "4XX", "5XX"}}
	const in, out = "discovery_name", "target_discovery_name"
	t.activeConns = metrics.NewGaugeVec("ecs_service_connect_active_connection_count",
		"ActiveConnectionCount: client connections open to this task's proxy, by discovery name.", in)
	t.newConns = metrics.NewCounterVec("ecs_service_connect_new_connection_count_total",
		"NewConnectionCount: client connections accepted by this task's proxy.", in)
	t.bytes = metrics.NewCounterVec("ecs_service_connect_processed_bytes_total",
		"ProcessedBytes: bytes in and out of this task's proxy for inbound traffic.", in)
	t.requests = metrics.NewCounterVec("ecs_service_connect_request_count_total",
		"RequestCount: inbound requests (HTTP) or connections (TCP) served.", in)
	t.grpcRequests = metrics.NewCounterVec("ecs_service_connect_grpc_request_count_total",
		"GrpcRequestCount: inbound gRPC calls served.", in)
	t.targetCodes = metrics.NewCounterVec("ecs_service_connect_httpcode_target_count_total",
		"HTTPCode_Target_<n>XX_Count: responses of the called service's applications, by class.", out, "code_class")
	t.targetBytes = metrics.NewCounterVec("ecs_service_connect_target_processed_bytes_total",
		"TargetProcessedBytes: bytes of outbound calls, both ways.", out)
	t.targetTime = metrics.NewHistogramVec("ecs_service_connect_target_response_time_seconds",
		"TargetResponseTime: from sending a call to the response headers, per attempt that answered.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, out)
	t.targetReqs = metrics.NewCounterVec("ecs_service_connect_target_request_count_total",
		"Outbound requests (HTTP) or connections (TCP) to the service.", out)
	t.retries = metrics.NewCounterVec("ecs_service_connect_target_retries_total",
		"Retries of outbound calls (Trellis addition).", out)
	reg.MustRegister(t.activeConns, t.newConns, t.bytes, t.requests, t.grpcRequests, t.targetCodes, t.targetBytes,
		t.targetTime, t.targetReqs, t.retries)
	t.inbound = egress.ObserverFunc(t.observeInbound)
	t.outbound = egress.ObserverFunc(t.observeOutbound)
	return t
}

func (t *telemetry) observeInbound(r *egress.Record) {
	switch r.Kind {
	case egress.KindConnOpen:
		t.newConns.With(r.Service).Inc()
		t.activeConns.With(r.Service).Inc()
	case egress.KindConnClose:
		t.activeConns.With(r.Service).Dec()
		if r.Protocol == egress.TCP {
			t.requests.With(r.Service).Inc()
			t.bytes.With(r.Service).Add(uint64(max(r.BytesIn+r.BytesOut, 0)))
		}
	case egress.KindRequest:
		t.requests.With(r.Service).Inc()
		t.bytes.With(r.Service).Add(uint64(max(r.BytesIn+r.BytesOut, 0)))
		if r.IsGRPC() {
			t.grpcRequests.With(r.Service).Inc()
		}
		if t.log != nil {
			t.log.write(r, "inbound")
		}
	}
}

func (t *telemetry) observeOutbound(r *egress.Record) {
	switch r.Kind {
	case egress.KindConnClose:
		if r.Protocol == egress.TCP {
			t.targetReqs.With(r.Service).Inc()
			t.targetBytes.With(r.Service).Add(uint64(max(r.BytesIn+r.BytesOut, 0)))
		}
	case egress.KindRequest:
		t.targetReqs.With(r.Service).Inc()
		t.targetBytes.With(r.Service).Add(uint64(max(r.BytesIn+r.BytesOut, 0)))
		if r.Retries > 0 {
			t.retries.With(r.Service).Add(uint64(r.Retries))
		}
		if !r.Generated && r.Status >= 100 && r.Status < 600 {
			t.targetCodes.With(r.Service, t.codeClassName[r.Status/100]).Inc()
		}
		if r.TargetTime > 0 {
			t.targetTime.With(r.Service).Observe(r.TargetTime.Seconds())
		}
		if t.log != nil {
			t.log.write(r, "outbound")
		}
	}
}

// accessLog writes one line per request, in ECS's TEXT or JSON format
// (accessLogConfiguration), to w, which ECS's proxy would call stdout.
type accessLog struct {
	mu        sync.Mutex
	w         *bufio.Writer
	json      bool
	withQuery bool
}

func newAccessLog(w io.Writer, c *config.AccessLog) *accessLog {
	if c == nil {
		return nil
	}
	return &accessLog{w: bufio.NewWriter(w), json: c.Format == config.AccessLogJSON, withQuery: c.IncludeQueryParameters}
}

// logLine is the JSON form: Envoy-style field names, as ECS documents.
type logLine struct {
	StartTime      string `json:"start_time"`
	Direction      string `json:"direction"`
	Service        string `json:"service"`
	Method         string `json:"method"`
	Path           string `json:"path"`
	Protocol       string `json:"protocol"`
	ResponseCode   int    `json:"response_code"`
	ResponseFlags  string `json:"response_flags"`
	BytesReceived  int64  `json:"bytes_received"`
	BytesSent      int64  `json:"bytes_sent"`
	Duration       int64  `json:"duration"`
	UpstreamTime   int64  `json:"upstream_service_time"`
	Retries        int    `json:"retries"`
	ForwardedFor   string `json:"x_forwarded_for"`
	RequestID      string `json:"request_id"`
	Authority      string `json:"authority"`
	UpstreamHost   string `json:"upstream_host"`
	TraceParent    string `json:"traceparent"`
	GRPCStatusCode *int   `json:"grpc_status,omitempty"`
}

func (l *accessLog) write(r *egress.Record, direction string) {
	path := r.Path
	if !l.withQuery {
		path, _, _ = strings.Cut(path, "?")
	}
	flags := responseFlags(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		line := logLine{StartTime: r.Start.UTC().Format(time.RFC3339Nano), Direction: direction, Service: r.Service,
			Method: r.Method, Path: path, Protocol: r.Proto, ResponseCode: r.Status, ResponseFlags: flags,
			BytesReceived: r.BytesIn, BytesSent: r.BytesOut, Duration: r.Duration.Milliseconds(),
			UpstreamTime: r.TargetTime.Milliseconds(), Retries: r.Retries, ForwardedFor: r.Client,
			RequestID: r.RequestID, Authority: r.Host, UpstreamHost: r.EndpointAddr, TraceParent: r.TraceParent}
		if r.GRPCStatus >= 0 {
			g := r.GRPCStatus
			line.GRPCStatusCode = &g
		}
		b, _ := json.Marshal(line)
		_, _ = l.w.Write(b)
		_ = l.w.WriteByte('\n')
	} else {
		// Envoy's default line, which ECS's TEXT format follows.
		_, _ = l.w.WriteString("[" + r.Start.UTC().Format("2006-01-02T15:04:05.000Z") + "] \"" + r.Method + " " + path + " " + r.Proto + "\" " +
			strconv.Itoa(r.Status) + " " + flags + " " + strconv.FormatInt(r.BytesIn, 10) + " " + strconv.FormatInt(r.BytesOut, 10) + " " +
			strconv.FormatInt(r.Duration.Milliseconds(), 10) + " " + strconv.FormatInt(r.TargetTime.Milliseconds(), 10) + " \"" +
			r.Client + "\" \"-\" \"" + r.RequestID + "\" \"" + r.Host + "\" \"" + r.EndpointAddr + "\"\n")
	}
	_ = l.w.Flush()
}

// responseFlags are Envoy-style flags for what went wrong ("-" when
// nothing did): UH no healthy upstream, UF connect failure, UT timeout,
// UO overflow (breaker), UR reset, DC client went away.
func responseFlags(r *egress.Record) string {
	switch {
	case r.BreakerOpen || r.Failure == egress.FailureOverflow:
		return "UO"
	case r.TimedOut:
		return "UT"
	}
	switch r.Failure {
	case egress.FailureNoEndpoints:
		return "UH"
	case egress.FailureConnect:
		return "UF"
	case egress.FailureReset:
		return "UR"
	case egress.FailureClientClosed:
		return "DC"
	}
	return "-"
}
