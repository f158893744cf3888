package config

import "strings"

// RetryOn is a set of retry events: the conditions after which a failed
// attempt may be tried again. It is a bit set so that the proxy tests it
// without allocating.
type RetryOn uint16

// The retry events. Names are what retryOn lists in the document. The
// bit values are stable: agents publish them to their clients, so new
// events are only ever appended.
const (
	// Retry5xx: the upstream answered with any 5xx status. HTTP family.
	Retry5xx RetryOn = 1 << iota
	// RetryGatewayError: the upstream answered 502, 503 or 504. HTTP family.
	RetryGatewayError
	// Retry503: the upstream answered 503. HTTP family.
	Retry503
	// RetryRetriable4xx: the upstream answered 409 Conflict, the one 4xx
	// Envoy treats as retriable. HTTP family.
	RetryRetriable4xx
	// RetryReset: the upstream reset or closed the connection before the
	// response headers. HTTP family.
	RetryReset
	// RetryConnectFailure: no connection could be made; the upstream never
	// saw the request. Every protocol, and the only event for TCP.
	RetryConnectFailure
	// RetryRefusedStream: an HTTP/2 upstream refused the stream
	// (REFUSED_STREAM); the upstream never processed it. HTTP family.
	RetryRefusedStream
	// RetryCancelled: gRPC status CANCELLED. gRPC only.
	RetryCancelled
	// RetryDeadlineExceeded: gRPC status DEADLINE_EXCEEDED. gRPC only.
	RetryDeadlineExceeded
	// RetryInternal: gRPC status INTERNAL. gRPC only.
	RetryInternal
	// RetryResourceExhausted: gRPC status RESOURCE_EXHAUSTED. gRPC only.
	RetryResourceExhausted
	// RetryUnavailable: gRPC status UNAVAILABLE. gRPC only.
	RetryUnavailable
)

// retryEvents is the documented set of retryOn names, in the order they
// are printed, with the protocols each applies to.
var retryEvents = [...]struct {
	name  string
	event RetryOn
	tcp   bool // also allowed for TCP services
	grpc  bool // gRPC services only
}{
	{"5xx", Retry5xx, false, false},
	{"gateway-error", RetryGatewayError, false, false},
	{"503", Retry503, false, false},
	{"retriable-4xx", RetryRetriable4xx, false, false},
	{"reset", RetryReset, false, false},
	{"connect-failure", RetryConnectFailure, true, false},
	{"refused-stream", RetryRefusedStream, false, false},
	{"cancelled", RetryCancelled, false, true},
	{"deadline-exceeded", RetryDeadlineExceeded, false, true},
	{"internal", RetryInternal, false, true},
	{"resource-exhausted", RetryResourceExhausted, false, true},
	{"unavailable", RetryUnavailable, false, true},
}

// Has reports whether every event of e is in r.
func (r RetryOn) Has(e RetryOn) bool { return r&e == e }

// String lists the events' names joined by commas, for example
// "503,connect-failure,refused-stream"; "" for the empty set.
func (r RetryOn) String() string {
	var b strings.Builder
	for _, ev := range retryEvents {
		if r&ev.event == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(ev.name)
	}
	return b.String()
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
		if ev.name == name {
			return ev.event, true
		}
	}
	return 0, false
}

// retryEventNames lists every name, for error messages.
func retryEventNames() string {
	names := make([]string, len(retryEvents))
	for i, ev := range retryEvents {
		names[i] = ev.name
	}
	return strings.Join(names, ", ")
}
