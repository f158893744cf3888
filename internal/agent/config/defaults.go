package config

import "time"

// Defaults and limits. Each names where the number comes from; "reference"
// is /work/shared/reference/service-connect.md (ECS Service Connect
// research notes), by section.

// ECS Service Connect defaults and limits.
const (
	// DefaultIdleTimeoutHTTP is the idle timeout of http, http2 and grpc
	// services: ECS TimeoutConfiguration, reference §2.9.
	DefaultIdleTimeoutHTTP = 300 * time.Second
	// DefaultIdleTimeoutTCP is the idle timeout of TCP services: ECS
	// TimeoutConfiguration, reference §2.9.
	DefaultIdleTimeoutTCP = 3600 * time.Second
	// DefaultPerRequestTimeout is the per-request timeout of HTTP-family
	// services: the 15000 ms ECS's proxy advertises in
	// X-Envoy-Expected-Rq-Timeout-Ms, reference §2.9.
	DefaultPerRequestTimeout = 15 * time.Second
	// MaxTimeoutSeconds is the largest timeout ECS accepts (its Duration
	// type is an int32 of seconds), reference §1.1.
	MaxTimeoutSeconds = 2147483647
	// MaxClientAliases is ECS's limit on clientAliases per service,
	// reference §1.2.
	MaxClientAliases = 1
)

// Retry defaults: the App Mesh default route retry policy, which Service
// Connect reproduces (reference §2.8), plus Envoy's retry budget.
const (
	// DefaultNumRetries is App Mesh's default maxRetries.
	DefaultNumRetries = 2
	// MaxNumRetries bounds numRetries. Neither Envoy nor App Mesh has a
	// bound; ours keeps one client from multiplying its load on a
	// failing service more than elevenfold.
	MaxNumRetries = 10
	// DefaultRetryOnHTTP is what http and http2 services retry on: App
	// Mesh's HTTP event 503 and its TCP events connect-failure and
	// refused-stream.
	DefaultRetryOnHTTP = Retry503 | RetryConnectFailure | RetryRefusedStream
	// DefaultRetryOnGRPC adds App Mesh's gRPC event UNAVAILABLE.
	DefaultRetryOnGRPC = DefaultRetryOnHTTP | RetryUnavailable
	// DefaultRetryOnTCP: a TCP stream can only be retried before any byte
	// was sent, that is after a failed connect.
	DefaultRetryOnTCP = RetryConnectFailure
	// DefaultRetryBudgetPercent is Envoy's RetryBudget.budget_percent
	// default: active retries may be at most 20% of active requests.
	DefaultRetryBudgetPercent = 20
	// RetryBudgetMinConcurrency is Envoy's
	// RetryBudget.min_retry_concurrency default: the budget always allows
	// this many concurrent retries, so a quiet service can still retry.
	RetryBudgetMinConcurrency = 3
)

// Outlier detection defaults: Envoy's OutlierDetection defaults
// (ECS's own numbers are unpublished, reference §2.10).
const (
	// DefaultConsecutive5xx is Envoy's consecutive_5xx.
	DefaultConsecutive5xx = 5
	// DefaultConsecutiveGatewayFailure is 0 (off): Envoy counts 5 by
	// default but its enforcing_consecutive_gateway_failure defaults to
	// 0%, so it never ejects on them.
	DefaultConsecutiveGatewayFailure = 0
	// DefaultOutlierInterval is Envoy's interval.
	DefaultOutlierInterval = 10 * time.Second
	// DefaultBaseEjection is Envoy's base_ejection_time.
	DefaultBaseEjection = 30 * time.Second
	// DefaultMaxEjectionPercent is Envoy's max_ejection_percent.
	DefaultMaxEjectionPercent = 10
)

// Circuit breaker defaults: Envoy's CircuitBreakers.Thresholds defaults.
const (
	DefaultMaxConnections     = 1024
	DefaultMaxPendingRequests = 1024
	DefaultMaxRequests        = 1024
)

// Readiness defaults. Neither Envoy nor ECS has readiness gating; these
// are the Kubernetes readiness probe defaults (periodSeconds,
// timeoutSeconds, successThreshold), and the bounds are ECS's container
// healthCheck bounds (interval 5–300 s, timeout 2–60 s, retries 1–10)
// widened at the low end, as a readiness probe should answer fast.
const (
	DefaultReadinessInterval         = 10 * time.Second
	DefaultReadinessTimeout          = 1 * time.Second
	DefaultReadinessHealthyThreshold = 1
	MaxReadinessIntervalSeconds      = 300
	MaxReadinessTimeoutSeconds       = 60
	MaxReadinessHealthyThreshold     = 10
)

// Agent-wide defaults.
const (
	// DefaultDrain is the Service Connect agent's LISTENER_DRAIN_WAIT_TIME_S
	// default, reference §2.11.
	DefaultDrain = 20 * time.Second
	// MinDrainSeconds and MaxDrainSeconds are that setting's bounds; the
	// maximum leaves room inside ECS's largest stopTimeout (120 s).
	MinDrainSeconds = 5
	MaxDrainSeconds = 110
	// DefaultVIPCIDR is the egress VIP range ECS's agent uses, reference
	// §2.2.
	DefaultVIPCIDR = "127.255.0.0/16"
	// MaxVIPPrefixBits: the VIP range must hold at least 256 addresses.
	MaxVIPPrefixBits = 24
	// DefaultAdminAddr is loopback on Envoy's conventional admin port.
	DefaultAdminAddr = "127.0.0.1:9901"
	// MaxDocumentBytes bounds the document; real ones are a few KiB.
	MaxDocumentBytes = 1 << 20
)

// defaultIdleTimeout returns the idle timeout of a service speaking p.
func defaultIdleTimeout(p Protocol) time.Duration {
	if p == ProtocolTCP {
		return DefaultIdleTimeoutTCP
	}
	return DefaultIdleTimeoutHTTP
}

// defaultPerRequestTimeout returns the per-request timeout of a service
// speaking p; TCP has none.
func defaultPerRequestTimeout(p Protocol) time.Duration {
	if p == ProtocolTCP {
		return 0
	}
	return DefaultPerRequestTimeout
}

// defaultRetryOn returns the retry events of a service speaking p.
func defaultRetryOn(p Protocol) RetryOn {
	switch p {
	case ProtocolTCP:
		return DefaultRetryOnTCP
	case ProtocolGRPC:
		return DefaultRetryOnGRPC
	}
	return DefaultRetryOnHTTP
}

// defaultRetryPolicy is the retry policy of a service speaking p. Each
// try is bounded only by the per-request timeout.
func defaultRetryPolicy(p Protocol) RetryPolicy {
	return RetryPolicy{
		NumRetries:    DefaultNumRetries,
		RetryOn:       defaultRetryOn(p),
		BudgetPercent: DefaultRetryBudgetPercent,
	}
}

// defaultOutlierDetection is the outlier detection every service gets.
func defaultOutlierDetection() OutlierDetection {
	return OutlierDetection{
		Consecutive5xx:            DefaultConsecutive5xx,
		ConsecutiveGatewayFailure: DefaultConsecutiveGatewayFailure,
		Interval:                  DefaultOutlierInterval,
		BaseEjection:              DefaultBaseEjection,
		MaxEjectionPercent:        DefaultMaxEjectionPercent,
	}
}

// defaultCircuitBreaker is the circuit breaker every service gets.
func defaultCircuitBreaker() CircuitBreaker {
	return CircuitBreaker{
		MaxConnections:     DefaultMaxConnections,
		MaxPendingRequests: DefaultMaxPendingRequests,
		MaxRequests:        DefaultMaxRequests,
	}
}
