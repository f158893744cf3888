package agent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/trellis-mesh/trellis/internal/agent/config"
	"github.com/trellis-mesh/trellis/internal/agent/egress"
)

// attrConnect is the Cloud Map service attribute in which a server
// agent publishes how clients call its service. Clients read it with
// GetServiceAttributes. The value is JSON (at most 1024 characters, Cloud
// Map's limit for an attribute value).
const attrConnect = "TRELLIS_CONNECT"

// publishedVersion is the version of the attrConnect document.
const publishedVersion = 1

// published is what clients of a service need: its aliases and protocol,
// and the timeouts, retries, outlier detection and circuit breaking its
// owner configured for calls to it. Durations are in milliseconds.
type published struct {
	V            int            `json:"v"`
	Protocol     string         `json:"protocol"`
	Aliases      []publishAlias `json:"aliases"`
	IdleMS       int64          `json:"idleMs,omitempty"`
	PerRequestMS int64          `json:"perRequestMs,omitempty"`
	Retry        publishRetry   `json:"retry"`
	Outlier      publishOutlier `json:"outlier"`
	Breaker      publishBreaker `json:"breaker"`
	TLS          bool           `json:"tls,omitempty"`
}

type publishAlias struct {
	DNSName string `json:"dnsName"`
	Port    uint16 `json:"port"`
}

type publishRetry struct {
	Num           int    `json:"num"`
	On            uint16 `json:"on"` // config.RetryOn bits
	PerTryMS      int64  `json:"perTryMs,omitempty"`
	BudgetPercent int    `json:"budgetPercent,omitempty"`
	NonIdempotent bool   `json:"nonIdempotent,omitempty"`
}

type publishOutlier struct {
	Consecutive5xx     int   `json:"consecutive5xx,omitempty"`
	ConsecutiveGateway int   `json:"consecutiveGateway,omitempty"`
	IntervalMS         int64 `json:"intervalMs,omitempty"`
	BaseEjectionMS     int64 `json:"baseEjectionMs,omitempty"`
	MaxEjectionPercent int   `json:"maxEjectionPercent,omitempty"`
}

type publishBreaker struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func fromMS(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// publishAttributes are the service attributes a server agent writes.
func publishAttributes(s *config.Service) (map[string]string, error) {
	p := published{V: publishedVersion, Protocol: s.Protocol.String(),
		IdleMS: ms(s.IdleTimeout), PerRequestMS: ms(s.PerRequestTimeout), TLS: s.TLS != nil,
		Retry: publishRetry{Num: s.Retry.NumRetries, On: uint16(s.Retry.RetryOn), PerTryMS: ms(s.Retry.PerTryTimeout),
			BudgetPercent: s.Retry.BudgetPercent, NonIdempotent: s.Retry.RetryNonIdempotent},
		Outlier: publishOutlier{Consecutive5xx: s.Outlier.Consecutive5xx, ConsecutiveGateway: s.Outlier.ConsecutiveGatewayFailure,
			IntervalMS: ms(s.Outlier.Interval), BaseEjectionMS: ms(s.Outlier.BaseEjection), MaxEjectionPercent: s.Outlier.MaxEjectionPercent},
		Breaker: publishBreaker{MaxConnections: s.Breaker.MaxConnections, MaxPendingRequests: s.Breaker.MaxPendingRequests,
			MaxRequests: s.Breaker.MaxRequests},
	}
	for _, a := range s.Aliases {
		p.Aliases = append(p.Aliases, publishAlias{DNSName: a.DNSName, Port: a.Port})
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > 1024 {
		return nil, fmt.Errorf("service %s: its client policy takes %d characters, more than the registry's 1024 per attribute", s.DiscoveryName, len(b))
	}
	return map[string]string{attrConnect: string(b)}, nil
}

// parsePublished reads attrConnect; nil (and no error) when the service
// has none.
func parsePublished(attrs map[string]string) (*published, error) {
	v, ok := attrs[attrConnect]
	if !ok {
		return nil, nil
	}
	p := &published{}
	if err := json.Unmarshal([]byte(v), p); err != nil {
		return nil, fmt.Errorf("attribute %s: %w", attrConnect, err)
	}
	if p.V != publishedVersion {
		return nil, fmt.Errorf("attribute %s: version %d, this agent reads %d", attrConnect, p.V, publishedVersion)
	}
	if len(p.Aliases) == 0 {
		return nil, fmt.Errorf("attribute %s: no client alias", attrConnect)
	}
	for _, a := range p.Aliases {
		// The name goes into hosts files: anything but a host name is
		// refused, whoever wrote the attribute.
		if !isHostName(a.DNSName) || a.Port == 0 {
			return nil, fmt.Errorf("attribute %s: alias %q port %d: want a host name and a port", attrConnect, a.DNSName, a.Port)
		}
	}
	return p, nil
}

func (p *published) equal(q *published) bool {
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(q)
	return string(a) == string(b)
}

// egressPolicy is the client side of what a service published.
func (p *published) egressPolicy() egress.Policy {
	return egress.Policy{
		Protocol:          protocolOf(p.Protocol),
		IdleTimeout:       fromMS(p.IdleMS),
		PerRequestTimeout: fromMS(p.PerRequestMS),
		// config.RetryOn is egress.RetryOn: the published bits are the
		// proxy's.
		Retry: egress.RetryPolicy{NumRetries: p.Retry.Num, On: egress.RetryOn(p.Retry.On), PerTryTimeout: fromMS(p.Retry.PerTryMS),
			BudgetPercent: p.Retry.BudgetPercent, RetryNonIdempotent: p.Retry.NonIdempotent},
		Outlier: egress.OutlierPolicy{Consecutive5xx: p.Outlier.Consecutive5xx, ConsecutiveGatewayFailure: p.Outlier.ConsecutiveGateway,
			Interval: fromMS(p.Outlier.IntervalMS), BaseEjection: fromMS(p.Outlier.BaseEjectionMS), MaxEjectionPercent: p.Outlier.MaxEjectionPercent},
		Breaker: egress.BreakerPolicy{MaxConnections: p.Breaker.MaxConnections, MaxPendingRequests: p.Breaker.MaxPendingRequests,
			MaxRequests: p.Breaker.MaxRequests},
	}
}

// ingressPolicy forwards to the application: its protocol and timeouts,
// no retries (there is one endpoint), no ejection.
func ingressPolicy(s *config.Service) egress.Policy {
	return egress.Policy{Protocol: protocolOf(s.Protocol.String()), IdleTimeout: s.IdleTimeout, PerRequestTimeout: s.PerRequestTimeout}
}

func protocolOf(name string) egress.Protocol {
	switch name {
	case "http":
		return egress.HTTP
	case "http2":
		return egress.HTTP2
	case "grpc":
		return egress.GRPC
	}
	return egress.TCP
}

// isHostName reports whether s is a DNS host name (RFC 1123): labels of
// letters, digits and inner hyphens, at most 63 characters each, 253 in
// all.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 || s[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0 && s[len(s)-1] != '-'
}
