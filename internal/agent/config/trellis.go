package config

// This file holds the raw shapes of the optional "trellis" block: what
// ECS Service Connect fixes (retries, outlier detection) or lacks
// (circuit breakers, readiness gating), made tunable. As in ecs.go,
// optional members are pointers and nothing is defaulted here; the
// defaults live in defaults.go and are applied by resolveTrellis.

// TrellisExtensions is the "trellis" member of the document. Every
// member is optional.
type TrellisExtensions struct {
	// DrainSeconds is how long the agent keeps serving in-flight requests
	// after it is told to stop; default 20, 5 to 110.
	DrainSeconds *int `json:"drainSeconds,omitempty"`
	// VIPCIDR is the IPv4 range the agent hands out virtual addresses for
	// client aliases from; default 127.255.0.0/16.
	VIPCIDR *string `json:"vipCidr,omitempty"`
	// AdminAddr is the host:port of the agent's admin listener; default
	// 127.0.0.1:9901.
	AdminAddr *string `json:"adminAddr,omitempty"`
	// Services tunes the services of serviceConnectConfiguration, each
	// entry naming one by its (resolved) discoveryName. Services without
	// an entry get the defaults.
	Services []TrellisService `json:"services,omitempty"`
}

// TrellisService holds the Trellis policies for one service. The
// policies describe how clients should call this service: the agent
// publishes them with its registration, the way ECS publishes a service's
// timeouts, and client agents apply them. Readiness is the exception: it
// gates this agent's own registration.
type TrellisService struct {
	// DiscoveryName is required and must be the discoveryName (after
	// defaulting from portName) of a service in
	// serviceConnectConfiguration.services.
	DiscoveryName    string                   `json:"discoveryName,omitempty"`
	RetryPolicy      *TrellisRetryPolicy      `json:"retryPolicy,omitempty"`
	OutlierDetection *TrellisOutlierDetection `json:"outlierDetection,omitempty"`
	CircuitBreaker   *TrellisCircuitBreaker   `json:"circuitBreaker,omitempty"`
	Readiness        *TrellisReadiness        `json:"readiness,omitempty"`
}

// TrellisRetryPolicy overrides the retry policy. See RetryPolicy for the
// meaning and defaults of each member.
type TrellisRetryPolicy struct {
	NumRetries           *int     `json:"numRetries,omitempty"`
	RetryOn              []string `json:"retryOn,omitempty"`
	PerTryTimeoutSeconds *int     `json:"perTryTimeoutSeconds,omitempty"`
	BudgetPercent        *int     `json:"budgetPercent,omitempty"`
	RetryNonIdempotent   *bool    `json:"retryNonIdempotent,omitempty"`
}

// TrellisOutlierDetection overrides passive outlier detection. See
// OutlierDetection for the meaning and defaults of each member.
type TrellisOutlierDetection struct {
	Consecutive5xx            *int `json:"consecutive5xx,omitempty"`
	ConsecutiveGatewayFailure *int `json:"consecutiveGatewayFailure,omitempty"`
	IntervalSeconds           *int `json:"intervalSeconds,omitempty"`
	BaseEjectionSeconds       *int `json:"baseEjectionSeconds,omitempty"`
	MaxEjectionPercent        *int `json:"maxEjectionPercent,omitempty"`
}

// TrellisCircuitBreaker overrides the connection-pool limits. See
// CircuitBreaker for the meaning and defaults of each member.
type TrellisCircuitBreaker struct {
	MaxConnections     *int `json:"maxConnections,omitempty"`
	MaxPendingRequests *int `json:"maxPendingRequests,omitempty"`
	MaxRequests        *int `json:"maxRequests,omitempty"`
}

// TrellisReadiness turns on readiness gating: the agent registers the
// instance HEALTHY only after the application answers. See Readiness for
// the meaning and defaults of each member.
type TrellisReadiness struct {
	Path             *string `json:"path,omitempty"`
	Port             *int    `json:"port,omitempty"`
	IntervalSeconds  *int    `json:"intervalSeconds,omitempty"`
	TimeoutSeconds   *int    `json:"timeoutSeconds,omitempty"`
	HealthyThreshold *int    `json:"healthyThreshold,omitempty"`
}
