package proxy

import (
	"time"

	"github.com/trellis-mesh/trellis/internal/identity"
)

// Record describes one finished request or connection. The proxy fills one
// per request from a pool, hands it to the Observer, and reuses it once
// Observe returns: an Observer must copy what it keeps.
type Record struct {
	Start    time.Time
	Duration time.Duration
	// RequestToTarget is the time from the request's arrival until it was
	// sent to the target; ResponseFromTarget the time from then until the
	// target's response headers arrived (0 when no target was reached).
	RequestToTarget    time.Duration
	ResponseFromTarget time.Duration

	// What served it ("" when nothing matched).
	ServiceID, ServiceARN   string
	NetworkARN              string
	ListenerID, ListenerARN string
	ListenerProtocol        string // HTTP, HTTPS, TLS_PASSTHROUGH
	TargetGroupID           string
	TargetGroupARN          string
	TargetAddr              string // ip:port of the target, "" when none

	SourceAddr string // ip:port of the client
	Method     string
	Path       string
	Proto      string // HTTP/1.1, HTTP/2.0
	Host       string
	UserAgent  string
	SNI        string
	TLSVersion string // e.g. TLSv1.3, "" for plain text
	TLSCipher  string

	Status        int   // response status code; 0 for TCP passthrough
	BytesReceived int64 // from the client
	BytesSent     int64 // to the client
	// Generated says the gateway answered itself (404 for an unknown host,
	// 502/504 for an unreachable target, a fixed response) rather than the
	// target; such answers count as HTTPCode_VpcLattice_<code>_Count.
	Generated bool
	// FailureReason is "" or a short reason (e.g. TargetConnectionError,
	// TargetTimeout, NoMatchingService).
	FailureReason string
	// AuthDeniedReason is Network, Service or Identity when auth denied.
	AuthDeniedReason string
	CallerPrincipal  string
	// CallerX509 is the client certificate of a caller authenticated by
	// one (nil otherwise).
	CallerX509 *identity.X509
	TimedOut   bool

	// AccessLogs says where the record must be logged: the subscriptions
	// of the service and of the network, resolved at compile time.
	AccessLogs []string // destination ARNs
}

// Observer receives every finished request. Observe is called on the
// request's goroutine after the response is written; it must not block
// (hand off to a buffered writer) and must not keep rec.
type Observer interface {
	Observe(rec *Record)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(*Record)

// Observe calls f(rec).
func (f ObserverFunc) Observe(rec *Record) { f(rec) }
