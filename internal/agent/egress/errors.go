package egress

import (
	"errors"
	"fmt"
)

// Errors of the package's API.
var (
	// ErrClosed is returned by Listen after Close.
	ErrClosed = errors.New("egress: proxy closed")
	// ErrInvalidPolicy is wrapped by Policy.Validate, Listen and SetPolicy
	// for a policy that cannot be used.
	ErrInvalidPolicy = errors.New("egress: invalid policy")
	// ErrInvalidTLSConfig is wrapped by ListenTLS for a server
	// configuration that could never complete a handshake.
	ErrInvalidTLSConfig = errors.New("egress: invalid TLS config")
)

// Errors of the data path. They never leave the package: answer turns
// them into responses and Record fields.
var (
	// errOverflow: a circuit breaker is open; nothing was sent.
	errOverflow = errors.New("circuit breaker open")
	// errRequestTimeout is the cancel cause of the per-request timeout.
	errRequestTimeout = errors.New("per-request timeout")
	// errIdleTimeout is the cancel cause of a request's idle watchdog.
	errIdleTimeout = errors.New("idle timeout")
	// errPerTryTimeout is the cancel cause of the per-try timeout.
	errPerTryTimeout = errors.New("per-try timeout")
	// errAttemptOver is what an abandoned attempt's request body reads
	// once the proxy has moved on (to a retry, or to the end).
	errAttemptOver = errors.New("attempt abandoned")
	// errBodyLost: a retry needs request body bytes that went to an
	// earlier attempt without being buffered.
	errBodyLost = errors.New("request body bytes are no longer available")
)

// connectError is a failed connection to an endpoint, TCP or TLS. The
// endpoint never saw a byte of the request.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string { return fmt.Sprintf("connect to %s: %v", e.addr, e.err) }
func (e *connectError) Unwrap() error { return e.err }

// Failure says why a request or connection did not end with the
// endpoint's complete answer. It is a Record field.
type Failure uint8

// The failures.
const (
	// FailureNone: the endpoint's answer went to the client in full.
	FailureNone Failure = iota
	// FailureNoEndpoints: the service has no endpoints (503).
	FailureNoEndpoints
	// FailureOverflow: a circuit breaker was open (503, or a closed TCP
	// connection); no endpoint was tried.
	FailureOverflow
	// FailureConnect: the last attempt could not connect (503, or a
	// closed TCP connection).
	FailureConnect
	// FailureReset: the last attempt's connection broke before the
	// response headers, or its stream was refused (503).
	FailureReset
	// FailureTimeout: the per-request or per-try timeout passed (504, or
	// a cut stream).
	FailureTimeout
	// FailureIdle: the exchange was silent for the idle timeout (504 or a
	// cut stream; for TCP a closed connection).
	FailureIdle
	// FailureClientClosed: the client went away first; nothing was
	// answered.
	FailureClientClosed
	// FailureIncomplete: the endpoint's response broke after its headers;
	// the client's stream was cut.
	FailureIncomplete
	// FailureBadRequest: the proxy refused the request itself (CONNECT).
	FailureBadRequest
	// FailureTLSHandshake: the client's TLS handshake with a ListenTLS
	// listener failed (no or an untrusted client certificate, a protocol
	// error, the handshake timeout, or Close); the connection was closed
	// and no endpoint was tried. Only on KindConnClose records.
	FailureTLSHandshake
)

var failureNames = [...]string{
	"", "NoEndpoints", "Overflow", "ConnectFailure", "Reset", "Timeout", "IdleTimeout",
	"ClientClosed", "ResponseIncomplete", "BadRequest", "TLSHandshake",
}

// String is the failure's name, "" for FailureNone.
func (f Failure) String() string {
	if int(f) < len(failureNames) {
		return failureNames[f]
	}
	return fmt.Sprintf("Failure(%d)", uint8(f))
}
