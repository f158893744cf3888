package egress

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Protocol is a service's application protocol. It decides how a listener
// serves connections and how the proxy talks to endpoints.
type Protocol uint8

// The protocols. The values match internal/agent/config's Protocol so that
// the agent's conversion is obvious; it still converts by name.
const (
	// TCP splices bytes both ways. Only the idle timeout applies, and only
	// a failed connect is retried (nothing has been sent yet).
	TCP Protocol = iota
	// HTTP is HTTP/1.1 toward endpoints.
	HTTP
	// HTTP2 is HTTP/2 toward endpoints: h2c with prior knowledge in plain
	// text, h2 by ALPN over TLS.
	HTTP2
	// GRPC is HTTP/2 toward endpoints, with gRPC's statuses understood
	// (retry on UNAVAILABLE, outlier detection from grpc-status).
	GRPC
)

// String returns the ECS appProtocol spelling, or "tcp".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case HTTP:
		return "http"
	case HTTP2:
		return "http2"
	case GRPC:
		return "grpc"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// isHTTP reports whether p has requests and status codes.
func (p Protocol) isHTTP() bool { return p >= HTTP && p <= GRPC }

// RetryOn is a set of retry conditions. The bits are in the order of
// internal/agent/config's RetryOn.
type RetryOn uint16

// The retry conditions, with Envoy's meaning. 5xx and gateway-error also
// cover failures without a response (connect failure, reset, refused
// stream, per-try timeout), because the proxy would answer those with a
// 503 or 504 itself.
const (
	// Retry5xx: any 5xx answer, or no answer at all.
	Retry5xx RetryOn = 1 << iota
	// RetryGatewayError: 502, 503 or 504, or no answer at all.
	RetryGatewayError
	// Retry503: a 503 answer.
	Retry503
	// RetryRetriable4xx: a 409 Conflict answer.
	RetryRetriable4xx
	// RetryReset: the connection was reset or closed before the response
	// headers, or the per-try timeout passed.
	RetryReset
	// RetryConnectFailure: no connection could be made (TCP or TLS, an
	// endpoint refusing our client certificate included, which TLS 1.3
	// reports only after the handshake). The endpoint never saw the
	// request, so every method is retried.
	RetryConnectFailure
	// RetryRefusedStream: an HTTP/2 endpoint refused the stream; it never
	// processed the request, so every method is retried.
	RetryRefusedStream
	// RetryCancelled: gRPC status CANCELLED (1) in a headers-only answer.
	RetryCancelled
	// RetryDeadlineExceeded: gRPC status DEADLINE_EXCEEDED (4).
	RetryDeadlineExceeded
	// RetryInternal: gRPC status INTERNAL (13).
	RetryInternal
	// RetryResourceExhausted: gRPC status RESOURCE_EXHAUSTED (8).
	RetryResourceExhausted
	// RetryUnavailable: gRPC status UNAVAILABLE (14).
	RetryUnavailable
)

// retryOnNames is the spelling of each bit, for String.
var retryOnNames = [...]string{
	"5xx", "gateway-error", "503", "retriable-4xx", "reset", "connect-failure",
	"refused-stream", "cancelled", "deadline-exceeded", "internal",
	"resource-exhausted", "unavailable",
}

// Has reports whether every event of e is in r.
func (r RetryOn) Has(e RetryOn) bool { return r&e == e }

// String lists the conditions joined by commas, e.g. "503,connect-failure".
func (r RetryOn) String() string {
	var b strings.Builder
	for i, name := range retryOnNames {
		if r&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
	}
	return b.String()
}

// grpcConditions are the conditions a gRPC status carries. A call failing
// with one of them is retried whatever RetryNonIdempotent says, as gRPC's
// own retry design does: the server reported the status deliberately.
const grpcConditions = RetryCancelled | RetryDeadlineExceeded | RetryInternal |
	RetryResourceExhausted | RetryUnavailable

// RetryPolicy is how a failed attempt is tried again. The zero value
// never retries.
type RetryPolicy struct {
	// NumRetries is the number of retries after the first attempt, 0 to
	// MaxNumRetries. ECS's default is 2.
	NumRetries int
	// On is the set of conditions that allow a retry. ECS's default is
	// 503, connect-failure and refused-stream, plus unavailable for gRPC;
	// connect-failure for TCP.
	On RetryOn
	// PerTryTimeout bounds each attempt until its response headers; 0
	// bounds attempts only by the per-request timeout. A per-try timeout
	// is retried when On has 5xx, gateway-error or reset. Not used for
	// TCP.
	PerTryTimeout time.Duration
	// BudgetPercent caps concurrent retries at this percentage of the
	// service's concurrent requests, but always allows MinRetryConcurrency
	// (Envoy's retry budget; its default is 20). 0 removes the cap. The
	// cap keeps retries from multiplying the load on a service that is
	// already failing.
	BudgetPercent int
	// RetryNonIdempotent allows retrying requests whose method is not
	// idempotent (POST, PATCH, CONNECT, unknown methods) after the
	// endpoint may have acted on them. Default false: they are retried only
	// after a connect failure or a refused stream, where the endpoint
	// provably never processed them, and gRPC calls also on the gRPC
	// statuses in On.
	RetryNonIdempotent bool
}

// OutlierPolicy is passive health checking: an endpoint that keeps failing
// is ejected (gets no requests) for BaseEjection times the number of
// times it has been ejected, at most MaxEjection. The zero value never
// ejects.
type OutlierPolicy struct {
	// Consecutive5xx ejects after this many 5xx answers (or failures
	// without an answer) in a row; 0 turns the detector off. Envoy's
	// default is 5.
	Consecutive5xx int
	// ConsecutiveGatewayFailure ejects after this many 502, 503 or 504
	// answers (or failures without an answer) in a row; 0 turns it off.
	ConsecutiveGatewayFailure int
	// Interval is the time after which a re-admitted endpoint's ejection
	// count decays by one (Envoy's interval; default 10 s). 0 never
	// decays: every ejection of an endpoint lasts longer than the last.
	Interval time.Duration
	// BaseEjection is the first ejection's length (Envoy's default 30 s).
	BaseEjection time.Duration
	// MaxEjectionPercent caps the share of endpoints ejected at once
	// (Envoy's default 10). One endpoint may always be ejected, so small
	// services keep their detection, and the last endpoint never is.
	MaxEjectionPercent int
}

// enabled reports whether any detector is on.
func (o OutlierPolicy) enabled() bool {
	return (o.Consecutive5xx > 0 || o.ConsecutiveGatewayFailure > 0) && o.BaseEjection > 0
}

// BreakerPolicy limits the load this proxy puts on a service; past a
// limit, requests fail fast with 503 instead of queueing. 0 is unlimited
// for every field. Envoy's defaults are 1024 each.
type BreakerPolicy struct {
	// MaxConnections caps open connections to the service's endpoints.
	// HTTP/1.1: at most this many requests are in flight to endpoints at
	// once (one per connection); the others wait as pending requests. HTTP/2:
	// a new connection past the cap fails the request. TCP: a client
	// connection past the cap is closed at once.
	MaxConnections int
	// MaxPendingRequests caps the HTTP/1.1 requests waiting for a
	// connection because MaxConnections are busy. Not used for HTTP/2,
	// whose requests wait on streams of one connection (bound them with
	// MaxRequests), nor for TCP.
	MaxPendingRequests int
	// MaxRequests caps the requests in flight, pending ones included. Not
	// used for TCP.
	MaxRequests int
}

// Policy is how the proxy serves one service. Every field is applied as
// given: ECS's defaults are the caller's business.
type Policy struct {
	Protocol Protocol
	// IdleTimeout closes client connections, pooled endpoint connections
	// and TCP streams that carried no bytes for this long; 0 never does.
	// On the HTTP family, when it is shorter than PerRequestTimeout (or
	// that is 0), a request whose exchange stays silent this long is also
	// cut (504 before the response headers). ECS's defaults are 300 s for
	// the HTTP family and 3600 s for TCP. The client-connection part is
	// fixed when the listener starts.
	IdleTimeout time.Duration
	// PerRequestTimeout bounds a whole request, retries and response body
	// included, from its arrival; 0 does not. Past it the client gets a
	// 504, or a cut stream when the headers were already sent. ECS's
	// default is 15 s; long gRPC streams need 0 or a larger value. Not
	// used for TCP.
	PerRequestTimeout time.Duration
	Retry             RetryPolicy
	Outlier           OutlierPolicy
	Breaker           BreakerPolicy
	// TLS is the client configuration toward endpoints (mutual TLS
	// between agents); nil is plain text. The proxy clones it and sets
	// NextProtos for the protocol. When ServerName is empty the endpoint's
	// host is verified, as tls.Dial does; set it (or
	// VerifyConnection) when certificates carry service names.
	TLS *tls.Config
}

// MaxNumRetries bounds RetryPolicy.NumRetries.
const MaxNumRetries = 10

// MinRetryConcurrency is the number of concurrent retries the budget always
// allows (Envoy's min_retry_concurrency).
const MinRetryConcurrency = 3

// MaxEjection caps one ejection (Envoy's max_ejection_time default); a
// BaseEjection above it is used as the cap instead.
const MaxEjection = 300 * time.Second

// Validate reports every problem of p, each with its field path, as one
// error wrapping ErrInvalidPolicy; nil when p is usable.
func (p Policy) Validate() error {
	var probs []string
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	if p.Protocol > GRPC {
		add("Protocol", "unknown protocol %d", p.Protocol)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"IdleTimeout", p.IdleTimeout},
		{"PerRequestTimeout", p.PerRequestTimeout},
		{"Retry.PerTryTimeout", p.Retry.PerTryTimeout},
		{"Outlier.Interval", p.Outlier.Interval},
		{"Outlier.BaseEjection", p.Outlier.BaseEjection},
	} {
		if d.v < 0 {
			add(d.field, "must not be negative, got %v", d.v)
		}
	}
	if p.Retry.NumRetries < 0 || p.Retry.NumRetries > MaxNumRetries {
		add("Retry.NumRetries", "must be between 0 and %d, got %d", MaxNumRetries, p.Retry.NumRetries)
	}
	if p.Retry.On >= 1<<len(retryOnNames) {
		add("Retry.On", "unknown condition bits %#x", uint16(p.Retry.On)>>len(retryOnNames)<<len(retryOnNames))
	}
	if p.Retry.BudgetPercent < 0 || p.Retry.BudgetPercent > 100 {
		add("Retry.BudgetPercent", "must be between 0 and 100, got %d", p.Retry.BudgetPercent)
	}
	if p.Outlier.Consecutive5xx < 0 {
		add("Outlier.Consecutive5xx", "must not be negative, got %d", p.Outlier.Consecutive5xx)
	}
	if p.Outlier.ConsecutiveGatewayFailure < 0 {
		add("Outlier.ConsecutiveGatewayFailure", "must not be negative, got %d", p.Outlier.ConsecutiveGatewayFailure)
	}
	if p.Outlier.MaxEjectionPercent < 0 || p.Outlier.MaxEjectionPercent > 100 {
		add("Outlier.MaxEjectionPercent", "must be between 0 and 100, got %d", p.Outlier.MaxEjectionPercent)
	}
	for _, b := range []struct {
		field string
		v     int
	}{
		{"Breaker.MaxConnections", p.Breaker.MaxConnections},
		{"Breaker.MaxPendingRequests", p.Breaker.MaxPendingRequests},
		{"Breaker.MaxRequests", p.Breaker.MaxRequests},
	} {
		if b.v < 0 {
			add(b.field, "must not be negative, got %d", b.v)
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, strings.Join(probs, "; "))
}

// policy is a validated Policy with what the data path derives from it,
// computed once per SetPolicy. It is immutable once published.
type policy struct {
	Policy
	// tls is Policy.TLS cloned with NextProtos for the protocol; nil for
	// plain text.
	tls *tls.Config
	// scheme is "http" or "https" toward endpoints.
	scheme string
	// h2 says endpoints speak HTTP/2.
	h2 bool
	// idleWatch says a request needs its own idle watchdog: the idle
	// timeout is shorter than the per-request timeout, or that is off.
	idleWatch bool
	// fast says HTTP/1.1 requests may take the fast path (fast.go):
	// HTTP1 endpoints, no idle watchdog, no per-try timeout.
	fast bool
}

// compile derives a policy. p must be valid.
func compile(p Policy) *policy {
	c := &policy{Policy: p, scheme: "http", h2: p.Protocol == HTTP2 || p.Protocol == GRPC}
	if p.TLS != nil {
		c.tls = p.TLS.Clone()
		if c.h2 {
			c.tls.NextProtos = []string{"h2"}
		} else if p.Protocol != TCP {
			c.tls.NextProtos = []string{"http/1.1"}
		}
		c.scheme = "https"
	}
	c.idleWatch = p.IdleTimeout > 0 && (p.PerRequestTimeout == 0 || p.IdleTimeout < p.PerRequestTimeout)
	c.fast = p.Protocol == HTTP && !c.idleWatch && p.Retry.PerTryTimeout == 0
	return c
}

// sameTransport reports whether a and b can share one HTTP transport: the
// fields a transport is built from are equal.
func sameTransport(a, b *policy) bool {
	return a.h2 == b.h2 && a.Policy.TLS == b.Policy.TLS && a.IdleTimeout == b.IdleTimeout &&
		a.Breaker.MaxConnections == b.Breaker.MaxConnections && a.fast == b.fast
}
