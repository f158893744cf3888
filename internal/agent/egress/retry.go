package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// Retries: how an attempt ended (outcome), which retry conditions that
// meets, and whether the policy, the method, the body and the retry
// budget allow another attempt.

// outcome is how an attempt ended.
type outcome uint8

const (
	outResponse   outcome = iota // response headers arrived
	outConnect                   // no connection could be made; nothing sent
	outRefused                   // HTTP/2 REFUSED_STREAM; not processed
	outReset                     // the connection broke before the headers
	outTryTimeout                // the per-try timeout passed
	outOverflow                  // a circuit breaker refused the attempt
	outTimeout                   // the per-request timeout passed
	outIdle                      // the request's idle timeout passed
	outClientGone                // the client went away
)

var outcomeNames = [...]string{"response", "connection failure", "refused stream", "connection reset",
	"per-try timeout", "overflow", "timeout", "idle timeout", "client gone"}

func (o outcome) String() string { return outcomeNames[o] }

// classify names the outcome of a failed attempt. The request's own
// context comes first: when it has ended, that is the reason.
func classify(err error, ctx, actx context.Context) outcome {
	var ce *connectError
	switch {
	case errors.Is(err, errOverflow):
		return outOverflow
	case ctx.Err() != nil:
		return ctxOutcome(ctx)
	case deadlinePassed(ctx):
		// The per-request timeout has passed but its timer has not yet
		// ended ctx: a dial or read cut by the deadline got here first.
		return outTimeout
	case errors.Is(err, errPerTryTimeout) || (actx != ctx && context.Cause(actx) == errPerTryTimeout):
		return outTryTimeout
	case errors.As(err, &ce) || refusedByTLS(err):
		return outConnect
	case strings.Contains(err.Error(), "client conn could not be established"):
		// The bundled HTTP/2 client's errClientConnNotEstablished: the
		// connection died before the request's stream was opened, so
		// nothing was sent (a TLS 1.3 refusal of our certificate, whose
		// alert this error does not carry, or an endpoint closing at once).
		return outConnect
	case strings.Contains(err.Error(), "REFUSED_STREAM"):
		// The bundled HTTP/2 client's StreamError is not exported.
		return outRefused
	}
	return outReset
}

// certRefusals are the TLS alerts by which a server refuses a client's
// certificate (RFC 8446 §6.2).
var certRefusals = [...]tls.AlertError{
	42,  // bad_certificate
	43,  // unsupported_certificate
	44,  // certificate_revoked
	45,  // certificate_expired
	46,  // certificate_unknown
	48,  // unknown_ca
	49,  // access_denied
	51,  // decrypt_error (a bad CertificateVerify)
	116, // certificate_required
}

// refusedByTLS reports whether err is an endpoint's TLS alert refusing
// this proxy's client certificate. In TLS 1.3 a client finishes its
// handshake before the server has checked its certificate, so the refusal
// comes as the first read's error, after the request was written; but the
// server's TLS layer dropped the request unread, so this is a connect
// failure like a refusal in TLS 1.2's handshake. crypto/tls reports a
// received alert as a *net.OpError "remote error" around an unexported
// type whose text is AlertError's.
func refusedByTLS(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return false
	}
	msg := oe.Err.Error()
	for _, a := range certRefusals {
		if msg == a.Error() {
			return true
		}
	}
	return false
}

// deadlinePassed reports whether ctx's deadline (the per-request
// timeout's; the idle watchdog has none) is behind.
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// ctxOutcome is the outcome for the request context's end.
func ctxOutcome(ctx context.Context) outcome {
	switch context.Cause(ctx) {
	case errRequestTimeout:
		return outTimeout
	case errIdleTimeout:
		return outIdle
	}
	return outClientGone
}

// healthStatus is the status outlier detection is told for the attempt:
// the response's status (a gRPC error's HTTP equivalent for a headers-only
// gRPC answer), or the status the proxy answers a failure with; 0 for
// outcomes that say nothing about the endpoint.
func (at *attempt) healthStatus() int {
	switch at.oc {
	case outResponse:
		if at.grpc > 0 && at.status < 500 {
			return grpcHTTPStatus(at.grpc)
		}
		return at.status
	case outConnect:
		return statusConnectFailure
	case outRefused, outReset:
		return statusReset
	case outTryTimeout, outTimeout, outIdle:
		return statusTimeout
	}
	return 0
}

// conditions are the retry conditions an attempt's outcome meets.
func (at *attempt) conditions() RetryOn {
	const noAnswer = Retry5xx | RetryGatewayError | RetryReset
	switch at.oc {
	case outConnect:
		return noAnswer | RetryConnectFailure
	case outRefused:
		return noAnswer | RetryRefusedStream
	case outReset, outTryTimeout:
		return noAnswer
	case outResponse:
	default:
		return 0
	}
	var c RetryOn
	switch st := at.status; {
	case st == 503:
		c = Retry503 | Retry5xx | RetryGatewayError
	case st == 502 || st == 504:
		c = Retry5xx | RetryGatewayError
	case st >= 500:
		c = Retry5xx
	case st == 409:
		c = RetryRetriable4xx
	}
	switch at.grpc {
	case 1:
		c |= RetryCancelled
	case 4:
		c |= RetryDeadlineExceeded
	case 8:
		c |= RetryResourceExhausted
	case 13:
		c |= RetryInternal
	case 14:
		c |= RetryUnavailable
	}
	return c
}

// shouldRetry decides whether the n-th retry may follow at, and takes a
// retry-budget slot for the request if so.
func (s *service) shouldRetry(st *reqState, at *attempt, pol *policy, n int, method string, body *replayBody) bool {
	if n >= pol.Retry.NumRetries {
		return false
	}
	c := at.conditions() & pol.Retry.On
	if !st.grpc {
		c &^= grpcConditions
	}
	if c == 0 {
		return false
	}
	safe := at.oc == outConnect || at.oc == outRefused || pol.Retry.RetryNonIdempotent ||
		idempotent(method) || c&grpcConditions != 0
	if !safe || (body != nil && !body.replayable()) {
		return false
	}
	if pct := pol.Retry.BudgetPercent; pct > 0 && !st.retrySlot {
		limit := max(MinRetryConcurrency, s.active.Load()*int64(pct)/100)
		if s.retrying.Add(1) > limit {
			s.retrying.Add(-1)
			s.overBudget.Add(1)
			return false
		}
		st.retrySlot = true
	}
	return true
}

// idempotent reports whether method is idempotent (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// Retry backoff: Envoy's defaults, a random wait below 25 ms × 2^n, at
// most 250 ms.
const (
	retryBackoffBase = 25 * time.Millisecond
	retryBackoffMax  = 250 * time.Millisecond
)

// backoff waits before the (n+1)-th retry; false when ctx ended first,
// or when deadline (if set) comes first: then it returns at the deadline.
func backoff(ctx context.Context, n int, deadline time.Time) bool {
	d := jitter(min(retryBackoffBase<<min(n, 4), retryBackoffMax))
	if !deadline.IsZero() {
		if left := time.Until(deadline); left <= d {
			t := time.NewTimer(max(left, 0))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
