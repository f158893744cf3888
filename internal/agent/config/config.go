package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Config is the resolved agent configuration: every default applied,
// every name and port worked out. Parse returns it; the agent reads it
// and never needs the raw document again except to print it.
type Config struct {
	// Enabled is serviceConnectConfiguration.enabled. When false the agent
	// starts no listeners and registers nothing.
	Enabled bool
	// Namespace is the namespace the services register in and the agent
	// discovers from.
	Namespace Namespace
	// Services are the endpoints this task serves, in document order;
	// empty for a client-only agent.
	Services []Service
	// AccessLog is nil when access logs are off.
	AccessLog *AccessLog
	// Drain is how long the agent keeps serving in-flight requests after
	// it is told to stop; default 20 s. Longer drains lose fewer requests
	// on deploys but delay every task stop.
	Drain time.Duration
	// VIPCIDR is the range client-alias virtual addresses come from;
	// default 127.255.0.0/16. Loopback keeps them unreachable from
	// outside the task; a private range lets other network namespaces
	// reach them, at the risk of colliding with real addresses.
	VIPCIDR netip.Prefix
	// AdminAddr is the admin listener's host:port; default
	// 127.0.0.1:9901 here, which the agent replaces with its instance
	// address and port 9901 when the document sets no
	// trellis.adminAddr (so that agents of one machine do not collide).
	// The admin listener controls the agent, so keep it on loopback
	// unless something outside the task must reach it.
	AdminAddr string
	// Source is the document as decoded, before any default, for printing
	// back. The resolved fields above never point into it.
	Source *Document
}

// Namespace names a namespace. At most one of Name and ARN is set; with
// neither, the agent uses its node's default namespace (the Trellis
// analogue of a cluster's serviceConnectDefaults).
type Namespace struct {
	Name string
	ARN  string
}

// IsNodeDefault reports whether the document named no namespace.
func (n Namespace) IsNodeDefault() bool { return n.Name == "" && n.ARN == "" }

// Protocol is a service's application protocol, from its port mapping's
// appProtocol.
type Protocol uint8

const (
	// ProtocolTCP is plain TCP: appProtocol absent. Only the idle timeout
	// applies, and retries happen only after failed connects.
	ProtocolTCP Protocol = iota
	// ProtocolHTTP is appProtocol "http": HTTP/1.1 to the application.
	ProtocolHTTP
	// ProtocolHTTP2 is appProtocol "http2": HTTP/2 to the application.
	ProtocolHTTP2
	// ProtocolGRPC is appProtocol "grpc": gRPC over HTTP/2.
	ProtocolGRPC
)

// String returns the appProtocol spelling, or "tcp".
func (p Protocol) String() string {
	switch p {
	case ProtocolTCP:
		return "tcp"
	case ProtocolHTTP:
		return "http"
	case ProtocolHTTP2:
		return "http2"
	case ProtocolGRPC:
		return "grpc"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// IsHTTP reports whether p is of the HTTP family (http, http2, grpc),
// which has requests, status codes and per-request timeouts.
func (p Protocol) IsHTTP() bool { return p >= ProtocolHTTP && p <= ProtocolGRPC }

func (p Protocol) valid() bool { return p <= ProtocolGRPC }

// Service is one endpoint this task serves, resolved.
type Service struct {
	// PortName names the port mapping the service is on.
	PortName string
	// DiscoveryName is the registry service name; defaults to PortName.
	DiscoveryName string
	// Protocol comes from the port mapping's appProtocol.
	Protocol Protocol
	// ContainerPort is where the agent forwards inbound traffic.
	ContainerPort uint16
	// IngressPort is where the agent listens for inbound traffic:
	// ingressPortOverride, or ContainerPort. Unique among Services.
	IngressPort uint16
	// Aliases are the names and ports clients dial; exactly one (ECS
	// allows at most one, and one is made up when the document has none).
	Aliases []Alias
	// IdleTimeout closes connections idle this long; 0 never does.
	// Default 300 s for the HTTP family and 3600 s for TCP.
	IdleTimeout time.Duration
	// PerRequestTimeout bounds the wait for a whole response; 0 means no
	// bound. Default 15 s for the HTTP family; always 0 for TCP. When
	// IdleTimeout is shorter, a silent upstream is cut at IdleTimeout.
	PerRequestTimeout time.Duration
	// TLS is nil for plaintext between proxies.
	TLS *TLS
	// Retry is how clients retry calls to this service.
	Retry RetryPolicy
	// Outlier is how clients eject misbehaving instances of this service.
	Outlier OutlierDetection
	// Breaker limits how much load clients put on this service.
	Breaker CircuitBreaker
	// Readiness is nil when the instance registers as HEALTHY at once (ECS
	// behaviour); otherwise it registers only after the checks pass.
	Readiness *Readiness
}

// Alias is a name and port clients dial to reach a service.
type Alias struct {
	// DNSName is the name; defaults to DiscoveryName.namespace.
	DNSName string
	// Port is the port; defaults to the container port.
	Port uint16
	// TestTraffic, when set, picks the test (green) revision's traffic in
	// a blue/green deployment.
	TestTraffic *HeaderMatch
}

// HeaderMatch matches requests on one header.
type HeaderMatch struct {
	// Name is the header name as written; compare case-insensitively.
	Name string
	// Exact is the value to match when AnyValue is false.
	Exact string
	// AnyValue matches any request carrying the header.
	AnyValue bool
}

// TLS is TLS between proxies for one service.
type TLS struct {
	// CertificateAuthorityARN names the issuing CA; "" means the Trellis
	// server's own CA.
	CertificateAuthorityARN string
	// KMSKey and RoleARN are kept as given; "" when absent.
	KMSKey  string
	RoleARN string
}

// AccessLogFormat is the access-log line format.
type AccessLogFormat string

// The access-log formats.
const (
	AccessLogText AccessLogFormat = "TEXT"
	AccessLogJSON AccessLogFormat = "JSON"
)

// AccessLog configures access logs.
type AccessLog struct {
	Format AccessLogFormat
	// IncludeQueryParameters logs the query string with the path; default
	// false, as query strings often carry tokens.
	IncludeQueryParameters bool
}

// RetryPolicy is how clients retry a failed attempt.
type RetryPolicy struct {
	// NumRetries is the number of retries after the first attempt;
	// default 2, at most 10; 0 turns retries off.
	NumRetries int
	// RetryOn is the set of events that allow a retry. Default: 503,
	// connect-failure and refused-stream for http and http2; the same plus
	// unavailable for grpc; connect-failure for TCP.
	RetryOn RetryOn
	// PerTryTimeout bounds each attempt; 0 (the default) bounds attempts
	// only by PerRequestTimeout, which covers all of them. Always 0 for
	// TCP.
	PerTryTimeout time.Duration
	// BudgetPercent caps concurrent retries at this percentage of
	// concurrent requests (but always allows RetryBudgetMinConcurrency);
	// default 20; 0 removes the cap. The cap stops retries from
	// multiplying load on a service that is already failing.
	BudgetPercent int
	// RetryNonIdempotent allows retrying requests whose method is not
	// idempotent (RFC 9110 §9.2.2: POST, PATCH, CONNECT and unknown
	// methods) after the upstream may have seen them. Default false: such
	// requests are retried only on connect-failure and refused-stream,
	// where the upstream provably never processed them. gRPC calls are
	// POSTs; the gRPC-status events count as safe for them, as gRPC's own
	// retry design does. Always false for TCP.
	RetryNonIdempotent bool
}

// OutlierDetection is passive health checking: clients eject an instance
// that keeps failing, for BaseEjection times the number of times it has
// been ejected.
type OutlierDetection struct {
	// Consecutive5xx ejects after this many 5xx responses (for TCP, failed
	// connects) in a row; default 5; 0 turns this detector off.
	Consecutive5xx int
	// ConsecutiveGatewayFailure ejects after this many 502, 503 or 504
	// responses in a row; default 0 (off).
	ConsecutiveGatewayFailure int
	// Interval is how often ejections are reviewed; default 10 s.
	Interval time.Duration
	// BaseEjection is the shortest ejection; default 30 s.
	BaseEjection time.Duration
	// MaxEjectionPercent caps the share of instances ejected at once;
	// default 10. At least one instance may always be ejected, so the cap
	// does not switch detection off for small services.
	MaxEjectionPercent int
}

// Enabled reports whether any detector is on.
func (o OutlierDetection) Enabled() bool {
	return o.Consecutive5xx > 0 || o.ConsecutiveGatewayFailure > 0
}

// CircuitBreaker limits the load one client puts on a service; past a
// limit, calls fail fast instead of queueing.
type CircuitBreaker struct {
	// MaxConnections caps open connections; default 1024.
	MaxConnections int
	// MaxPendingRequests caps requests waiting for a connection; default
	// 1024. Not used for TCP.
	MaxPendingRequests int
	// MaxRequests caps requests in flight; default 1024. Not used for TCP.
	MaxRequests int
}

// Readiness gates registration on the application answering.
type Readiness struct {
	// Path, when set, makes each check an HTTP/1.1 GET of Path that must
	// answer with a status below 400; when "", a check is a TCP connect.
	// Always "" for TCP services.
	Path string
	// Port is the port checked; default the container port.
	Port uint16
	// Interval is the time between checks; default 10 s, 1 to 300 s.
	Interval time.Duration
	// Timeout bounds one check; default 1 s, 1 to 60 s, at most Interval.
	Timeout time.Duration
	// HealthyThreshold is the number of passes in a row needed; default 1,
	// at most 10.
	HealthyThreshold int
}

// Service returns the service with the given discovery name.
func (c *Config) Service(discoveryName string) (*Service, bool) {
	for i := range c.Services {
		if c.Services[i].DiscoveryName == discoveryName {
			return &c.Services[i], true
		}
	}
	return nil, false
}

// Validate checks the invariants of a resolved Config and reports every
// violation, with Go field paths such as `Services[0].Aliases[0].Port`,
// as a *ValidationError. Parse never returns a Config that fails it; it
// is for Configs built or changed by hand.
func (c *Config) Validate() error {
	var ps problems
	if c.Namespace.Name != "" && c.Namespace.ARN != "" {
		ps.addf("Namespace", "has both Name and ARN")
	}
	if c.Namespace.Name != "" {
		if msg := checkNamespaceName(c.Namespace.Name); msg != "" {
			ps.addf("Namespace.Name", "%s", msg)
		}
	}
	if c.Namespace.ARN != "" {
		if msg := checkARN(c.Namespace.ARN, "servicediscovery", "namespace/"); msg != "" {
			ps.addf("Namespace.ARN", "%s", msg)
		}
	}
	if a := c.AccessLog; a != nil && a.Format != AccessLogText && a.Format != AccessLogJSON {
		ps.addf("AccessLog.Format", "must be TEXT or JSON, got %q", a.Format)
	}
	if c.Drain < MinDrainSeconds*time.Second || c.Drain > MaxDrainSeconds*time.Second {
		ps.addf("Drain", "must be between %ds and %ds, got %v", MinDrainSeconds, MaxDrainSeconds, c.Drain)
	}
	if msg := checkVIPCIDR(c.VIPCIDR); msg != "" {
		ps.addf("VIPCIDR", "%s", msg)
	}
	if msg := checkAdminAddr(c.AdminAddr); msg != "" {
		ps.addf("AdminAddr", "%s", msg)
	}
	names := make(map[string]int, len(c.Services))
	endpoints := make(map[string]string)
	ingress := make(map[uint16]int)
	for i := range c.Services {
		at := index("Services", i)
		s := &c.Services[i]
		s.validate(&ps, at)
		if j, dup := names[s.DiscoveryName]; dup {
			ps.addf(field(at, "DiscoveryName"), "duplicates Services[%d]", j)
		}
		names[s.DiscoveryName] = i
		if j, dup := ingress[s.IngressPort]; dup {
			ps.addf(field(at, "IngressPort"), "%d is also the ingress port of Services[%d]", s.IngressPort, j)
		} else {
			ingress[s.IngressPort] = i
		}
		for k, a := range s.Aliases {
			key := a.DNSName + ":" + strconv.Itoa(int(a.Port))
			p := index(field(at, "Aliases"), k)
			if other, dup := endpoints[key]; dup {
				ps.addf(p, "%q duplicates %s", key, other)
			}
			endpoints[key] = p
		}
	}
	return ps.err()
}

func (s *Service) validate(ps *problems, at string) {
	if msg := checkPortName(s.PortName); msg != "" {
		ps.addf(field(at, "PortName"), "%s", msg)
	}
	if msg := checkDiscoveryName(s.DiscoveryName); msg != "" {
		ps.addf(field(at, "DiscoveryName"), "%s", msg)
	}
	if !s.Protocol.valid() {
		ps.addf(field(at, "Protocol"), "unknown protocol %v", s.Protocol)
	}
	if s.ContainerPort == 0 {
		ps.addf(field(at, "ContainerPort"), "must not be 0")
	}
	if s.IngressPort == 0 {
		ps.addf(field(at, "IngressPort"), "must not be 0")
	}
	if n := len(s.Aliases); n < 1 || n > MaxClientAliases {
		ps.addf(field(at, "Aliases"), "must have at least 1 and at most %d entries, got %d", MaxClientAliases, n)
	}
	for k, a := range s.Aliases {
		p := index(field(at, "Aliases"), k)
		if msg := checkDNSName(a.DNSName); msg != "" {
			ps.addf(field(p, "DNSName"), "%s", msg)
		}
		if a.Port == 0 {
			ps.addf(field(p, "Port"), "must not be 0")
		}
		if h := a.TestTraffic; h != nil {
			if !s.Protocol.IsHTTP() {
				ps.addf(field(p, "TestTraffic"), "needs an HTTP-family protocol, got %v", s.Protocol)
			}
			if msg := checkHeaderName(h.Name); msg != "" {
				ps.addf(field(field(p, "TestTraffic"), "Name"), "%s", msg)
			}
			if msg := checkHeaderValue(h.Exact); msg != "" && !h.AnyValue {
				ps.addf(field(field(p, "TestTraffic"), "Exact"), "%s", msg)
			}
		}
	}
	checkDuration(ps, field(at, "IdleTimeout"), s.IdleTimeout, 0, MaxTimeoutSeconds*time.Second)
	checkDuration(ps, field(at, "PerRequestTimeout"), s.PerRequestTimeout, 0, MaxTimeoutSeconds*time.Second)
	if s.Protocol == ProtocolTCP && s.PerRequestTimeout != 0 {
		ps.addf(field(at, "PerRequestTimeout"), "must be 0 for TCP")
	}
	s.Retry.validate(ps, field(at, "Retry"), s.Protocol, s.PerRequestTimeout)
	o := s.Outlier
	oat := field(at, "Outlier")
	if o.Consecutive5xx < 0 {
		ps.addf(field(oat, "Consecutive5xx"), "must not be negative")
	}
	if o.ConsecutiveGatewayFailure < 0 {
		ps.addf(field(oat, "ConsecutiveGatewayFailure"), "must not be negative")
	}
	checkDuration(ps, field(oat, "Interval"), o.Interval, time.Second, MaxTimeoutSeconds*time.Second)
	checkDuration(ps, field(oat, "BaseEjection"), o.BaseEjection, time.Second, MaxTimeoutSeconds*time.Second)
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		ps.addf(field(oat, "MaxEjectionPercent"), "must be between 0 and 100, got %d", o.MaxEjectionPercent)
	}
	b := s.Breaker
	for _, f := range [...]struct {
		name string
		v    int
	}{{"MaxConnections", b.MaxConnections}, {"MaxPendingRequests", b.MaxPendingRequests}, {"MaxRequests", b.MaxRequests}} {
		if f.v < 1 {
			ps.addf(field(field(at, "Breaker"), f.name), "must be at least 1, got %d", f.v)
		}
	}
	if r := s.Readiness; r != nil {
		rat := field(at, "Readiness")
		if r.Path != "" {
			if msg := checkReadinessPath(r.Path); msg != "" {
				ps.addf(field(rat, "Path"), "%s", msg)
			}
			if s.Protocol == ProtocolTCP {
				ps.addf(field(rat, "Path"), "must be empty for TCP")
			}
		}
		if r.Port == 0 {
			ps.addf(field(rat, "Port"), "must not be 0")
		}
		checkDuration(ps, field(rat, "Interval"), r.Interval, time.Second, MaxReadinessIntervalSeconds*time.Second)
		checkDuration(ps, field(rat, "Timeout"), r.Timeout, time.Second, MaxReadinessTimeoutSeconds*time.Second)
		if r.Timeout > r.Interval {
			ps.addf(field(rat, "Timeout"), "must not exceed Interval (%v)", r.Interval)
		}
		if r.HealthyThreshold < 1 || r.HealthyThreshold > MaxReadinessHealthyThreshold {
			ps.addf(field(rat, "HealthyThreshold"), "must be between 1 and %d, got %d", MaxReadinessHealthyThreshold, r.HealthyThreshold)
		}
	}
}

func (r RetryPolicy) validate(ps *problems, at string, proto Protocol, perRequest time.Duration) {
	if r.NumRetries < 0 || r.NumRetries > MaxNumRetries {
		ps.addf(field(at, "NumRetries"), "must be between 0 and %d, got %d", MaxNumRetries, r.NumRetries)
	}
	if r.NumRetries > 0 && r.RetryOn == 0 {
		ps.addf(field(at, "RetryOn"), "must not be empty when NumRetries > 0")
	}
	if extra := r.RetryOn &^ allowedRetryOn(proto); extra != 0 && proto.valid() {
		ps.addf(field(at, "RetryOn"), "events %s do not apply to %v", extra, proto)
	}
	checkDuration(ps, field(at, "PerTryTimeout"), r.PerTryTimeout, 0, MaxTimeoutSeconds*time.Second)
	if perRequest > 0 && r.PerTryTimeout > perRequest {
		ps.addf(field(at, "PerTryTimeout"), "must not exceed PerRequestTimeout (%v)", perRequest)
	}
	if r.BudgetPercent < 0 || r.BudgetPercent > 100 {
		ps.addf(field(at, "BudgetPercent"), "must be between 0 and 100, got %d", r.BudgetPercent)
	}
	if proto == ProtocolTCP {
		if r.PerTryTimeout != 0 {
			ps.addf(field(at, "PerTryTimeout"), "must be 0 for TCP")
		}
		if r.RetryNonIdempotent {
			ps.addf(field(at, "RetryNonIdempotent"), "must be false for TCP")
		}
	}
}

// checkDuration checks lo <= d <= hi.
func checkDuration(ps *problems, at string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		ps.addf(at, "must be between %v and %v, got %v", lo, hi, d)
	}
}

// String summarises a Service for logs, for example
// "orders-api (http) :8080 -> 8080 as orders-api.shop:80".
func (s *Service) String() string {
	alias := ""
	if len(s.Aliases) > 0 {
		alias = fmt.Sprintf(" as %s:%d", s.Aliases[0].DNSName, s.Aliases[0].Port)
	}
	return fmt.Sprintf("%s (%v) :%d -> %d%s", s.DiscoveryName, s.Protocol, s.IngressPort, s.ContainerPort, alias)
}
