package config

import (
	"strings"

	"github.com/trellis-mesh/trellis/internal/agent/egress"
)

// RetryOn is a set of retry events: the conditions after which a failed
// attempt may be tried again. It is the egress proxy's own type, so the
// resolved policy goes to the proxy as it is. The bit values are stable:
// agents publish them to their clients, so new events are only ever
// appended (in egress).
type RetryOn = egress.RetryOn

// The retry events; their names are what retryOn lists in the document
// (RetryOn.String).
const (
	// Retry5xx: the upstream answered with any 5xx status. HTTP family.
	Retry5xx = egress.Retry5xx
	// RetryGatewayError: the upstream answered 502, 503 or 504. HTTP family.
	RetryGatewayError = egress.RetryGatewayError
	// Retry503: the upstream answered 503. HTTP family.
	Retry503 = egress.Retry503
	// RetryRetriable4xx: the upstream answered 409 Conflict, the one 4xx
	// Envoy treats as retriable. HTTP family.
	RetryRetriable4xx = egress.RetryRetriable4xx
	// RetryReset: the upstream reset or closed the connection before the
	// response headers. HTTP family.
	RetryReset = egress.RetryReset
	// RetryConnectFailure: no connection could be made; the upstream never
	// saw the request. Every protocol, and the only event for TCP.
	RetryConnectFailure = egress.RetryConnectFailure
	// RetryRefusedStream: an HTTP/2 upstream refused the stream
	// (REFUSED_STREAM); the upstream never processed it. HTTP family.
	RetryRefusedStream = egress.RetryRefusedStream
	// RetryCancelled: gRPC status CANCELLED. gRPC only.
	RetryCancelled = egress.RetryCancelled
	// RetryDeadlineExceeded: gRPC status DEADLINE_EXCEEDED. gRPC only.
	RetryDeadlineExceeded = egress.RetryDeadlineExceeded
	// RetryInternal: gRPC status INTERNAL. gRPC only.
	RetryInternal = egress.RetryInternal
	// RetryResourceExhausted: gRPC status RESOURCE_EXHAUSTED. gRPC only.
	RetryResourceExhausted = egress.RetryResourceExhausted
	// RetryUnavailable: gRPC status UNAVAILABLE. gRPC only.
	RetryUnavailable = egress.RetryUnavailable
)

// retryEvents is the documented set of events, in the order they are
// printed, with the protocols each applies to.
var retryEvents = [...]struct {
	event RetryOn
	tcp   bool // also allowed for TCP services
	grpc  bool // gRPC services only
}{
	{Retry5xx, false, false},
	{RetryGatewayError, false, false},
	{Retry503, false, false},
	{RetryRetriable4xx, false, false},
	{RetryReset, false, false},
	{RetryConnectFailure, true, false},
	{RetryRefusedStream, false, false},
	{RetryCancelled, false, true},
	{RetryDeadlineExceeded, false, true},
	{RetryInternal, false, true},
	{RetryResourceExhausted, false, true},
	{RetryUnavailable, false, true},
}

// allowedRetryOn is the set of events that make sense for p.
func allowedRetryOn(p Protocol) RetryOn {
	var set RetryOn
	for _, ev := range retryEvents {
		switch {
		case p == ProtocolTCP && !ev.tcp:
		case ev.grpc && p != ProtocolGRPC:
		default:
			set |= ev.event
		}
	}
	return set
}

// retryEventNamed returns the event called name.
func retryEventNamed(name string) (RetryOn, bool) {
	for _, ev := range retryEvents {
		if ev.event.String() == name {
			return ev.event, true
		}
	}
	return 0, false
}

// retryEventNames lists every name, for error messages.
func retryEventNames() string {
	names := make([]string, len(retryEvents))
	for i, ev := range retryEvents {
		names[i] = ev.event.String()
	}
	return strings.Join(names, ", ")
}
