package proxy

import (
	"errors"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("proxy: engine closed")

// genError is an answer the gateway generates itself instead of a target's
// response. serve returns one; ServeHTTP is the one place that turns it into
// a response (writeGenerated) and into the access-log fields.
type genError struct {
	status int
	reason string // Record.FailureReason
	body   string // plain-text body; "" sends an empty body
}

func (e *genError) Error() string { return e.reason }

// The generated answers. Status codes follow the Lattice-generated codes of
// reference §7.2 (400, 404, 502, 503, 504) plus 421 for a Host that does
// not belong to the TLS connection's server name.
var (
	errNoService = &genError{404, "NoMatchingService", "no service matches the request's host\n"}
	errNoRule    = &genError{404, "NoMatchingRule", "no rule matches the request\n"}
	errBadPath   = &genError{400, "InvalidRequestPath", "invalid request path\n"}
	errConnect   = &genError{400, "UnsupportedMethod", "CONNECT is not supported\n"}
	errMisdirect = &genError{421, "MisdirectedRequest", "the host does not belong to the TLS server name\n"}
	errNoTargets = &genError{503, "NoAvailableTargets", "no target is available\n"}
	// errProtocol answers a request the target group's protocol version
	// cannot carry (reference §4.2): HTTP/1.1 to an HTTP2 or GRPC group,
	// gRPC to an HTTP1 group, a non-POST HTTP/2 request to a GRPC group.
	// Lattice calls these errors without naming the code; we answer 502
	// (the target cannot be reached with this request), which gRPC
	// clients read as UNAVAILABLE.
	errProtocol      = &genError{502, "UnsupportedProtocolVersion", "the target group's protocol version cannot carry this request\n"}
	errTargetConnect = &genError{502, "TargetConnectionError", "the target could not be reached\n"}
	errTargetTimeout = &genError{504, "TargetTimeout", "the target did not answer in time\n"}
	// errClientGone: the client went away (or half-closed its side, which
	// net/http takes as the same) before the answer; the stream is
	// aborted and nothing is written.
	errClientGone = &genError{0, "ClientClosed", ""}
	// errAbort: the target's response broke after its headers were sent;
	// the client connection is aborted so that the truncation is visible.
	errAbort = &genError{0, "TargetResponseIncomplete", ""}
	// errBadBody answers a request whose chunked body breaks the framing
	// rules once its head has gone to the target (the fast path; on the
	// net/http path the guard fails the body's read).
	errBadBody = &genError{400, "InvalidRequestBody", "invalid request body framing\n"}
	// errHandOff is route's answer, on the fast path only, for a listener
	// the fast path does not forward for (see listenerRoute.h1fast): the
	// caller hands the connection to net/http, which routes the request
	// again. It is never written.
	errHandOff = &genError{0, "HandOff", ""}
)

// errBadTarget: a request target net/http's URL parser refuses (a '%' not
// followed by two hex digits in the path).
var errBadTarget = &h1wire.FramingError{Reason: "bad percent-encoding in the request target"}
