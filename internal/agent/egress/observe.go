package egress

import (
	"strings"
	"time"
)

// Kind says what a Record describes.
type Kind uint8

// The record kinds.
const (
	// KindRequest is one finished HTTP request or gRPC call: RequestCount,
	// GrpcRequestCount, HTTPCode_Target_<n>XX_Count, TargetResponseTime,
	// ProcessedBytes.
	KindRequest Kind = iota
	// KindConnOpen is a client connection accepted by a listener:
	// NewConnectionCount, and ActiveConnectionCount goes up by one.
	KindConnOpen
	// KindConnClose is a client connection closed: ActiveConnectionCount
	// goes down by one. Its bytes are the connection's; for TCP it also
	// names the endpoint and carries the connect retries.
	KindConnClose
)

// Record describes one finished request or one client connection event.
// The proxy hands it to Observer.Observe and reuses it once Observe
// returns: an Observer copies what it keeps.
type Record struct {
	Kind     Kind
	Service  string
	Protocol Protocol
	// Endpoint is the ID (or, without an ID, the address) of the endpoint
	// that answered or was tried last; "" when none was. EndpointAddr is
	// its host:port.
	Endpoint     string
	EndpointAddr string
	// Client is the client's ip:port.
	Client string
	// PeerURI is the first URI SAN (a SPIFFE ID, say) of the certificate
	// a client of a ListenTLS listener presented and crypto/tls verified
	// (cfg's ClientAuth is VerifyClientCertIfGiven or
	// RequireAndVerifyClientCert): the calling agent. "" otherwise, and on
	// KindConnOpen records, which precede the handshake.
	PeerURI string
	// Request fields; "" on connection records.
	Method, Path, Host, Proto string
	RequestID, TraceParent    string

	Start    time.Time
	Duration time.Duration
	// TargetTime is the time from sending the last attempt until its
	// response headers arrived (TargetResponseTime); 0 without a response.
	TargetTime time.Duration

	// Status is the HTTP status the client got; 0 when none (TCP, or a
	// client that went away).
	Status int
	// GRPCStatus is the grpc-status the client got, from the headers or
	// the trailers; -1 when there was none.
	GRPCStatus int
	// BytesIn counts bytes from the client (the request body, or a
	// connection's bytes read); BytesOut bytes to the client. An HTTP
	// connection of a TLS listener counts bytes on the wire, TLS records
	// included; a TCP stream counts the bytes it carried.
	BytesIn, BytesOut int64
	// Retries is the number of attempts after the first.
	Retries int

	// Generated says the proxy made the answer itself (503, 504) rather
	// than an endpoint; such answers are not HTTPCode_Target_* counts.
	Generated bool
	Failure   Failure
	// TimedOut: a timeout (per-request, per-try or idle) ended it.
	TimedOut bool
	// AllEjected: every endpoint was ejected, so an ejected one was used
	// (Envoy's panic routing).
	AllEjected bool
	// BreakerOpen: a circuit breaker refused it.
	BreakerOpen bool
}

// Clone returns a copy of r whose strings are its own, valid after
// Observe returns.
func (r *Record) Clone() Record {
	c := *r
	c.RequestID = strings.Clone(r.RequestID)
	c.TraceParent = strings.Clone(r.TraceParent)
	return c
}

// IsGRPC reports whether the record is a gRPC call (GrpcRequestCount).
func (r *Record) IsGRPC() bool { return r.Kind == KindRequest && r.Protocol == GRPC }

// Observer receives records. Observe is called on the request's or
// connection's goroutine, concurrently for different requests; it must
// not block (hand off to a buffered writer) and must not keep rec. The
// strings of a record may alias the connection's buffers (the HTTP/1
// fast path's trace and request IDs) and are valid only during the call:
// an observer that keeps a record keeps rec.Clone().
type Observer interface {
	Observe(rec *Record)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(*Record)

// Observe calls f(rec).
func (f ObserverFunc) Observe(rec *Record) { f(rec) }

// Stats are a service's counters since it was first named, for an admin
// endpoint and for tests. Totals only grow.
type Stats struct {
	// ActiveRequests and ActiveConnections are gauges: requests in flight
	// (pending ones included) and open client connections.
	ActiveRequests    int64
	ActiveConnections int64
	// Requests counts HTTP requests and TCP connections proxied (or
	// refused); Retries the attempts after the first.
	Requests uint64
	Retries  uint64
	// RetriesOverBudget counts retries the budget refused.
	RetriesOverBudget uint64
	// Overflows counts requests and connections a circuit breaker refused.
	Overflows uint64
	// Ejections counts outlier ejections; EjectionsSkipped the ones that
	// MaxEjectionPercent (or the last endpoint) prevented.
	Ejections        uint64
	EjectionsSkipped uint64
	// TLSHandshakeFailures counts client connections of the service's
	// ListenTLS listeners closed because their handshake failed (handshakes
	// cut by Close are not counted).
	TLSHandshakeFailures uint64
	// Endpoints is the current number of endpoints, Ejected how many of
	// them are ejected now.
	Endpoints int
	Ejected   int
}
