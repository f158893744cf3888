package egress

import (
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// hopHeaders are connection-specific (RFC 9110 §7.6.1) and never forwarded
// in either direction, in canonical form (net/http canonicalises the names
// of HTTP/1 and HTTP/2 requests alike). Expect is answered by the proxy's
// own server, as Envoy does, so it is not forwarded either.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// rewriteRequest turns the client's header map, in place, into the one sent
// to endpoints: hop-by-hop headers out (but "te: trailers", which gRPC
// needs, kept), x-forwarded-for appended, x-forwarded-proto, a W3C
// traceparent and an x-request-id added when missing. Host stays as the
// client sent it.
func (s *service) rewriteRequest(r *http.Request, st *reqState) {
	p := s.p
	h := r.Header
	keepTE := hasToken(h["Te"], "trailers")
	removeHopHeaders(h)
	delete(h, "Expect")
	for k := range h {
		if h1wire.FramingTwin(k) {
			// An HTTP/2 request may carry one (HTTP/1 clients are
			// refused, checkRequest); an HTTP/1 endpoint that maps '_'
			// to '-' would frame by it.
			delete(h, k)
		}
	}
	if keepTE {
		h["Te"] = p.teTrailers
	}
	// One allocation holds the new header values.
	vals := new([4]string)
	ip := clientIP(r.RemoteAddr)
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		vals[0] = strings.Join(prior, ", ") + ", " + ip
	} else {
		vals[0] = ip
	}
	h["X-Forwarded-For"] = vals[0:1:1]
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		// The application spoke plain text to its proxy; another agent
		// speaks TLS to a ListenTLS listener.
		vals[1] = "http"
		if r.TLS != nil {
			vals[1] = "https"
		}
		h["X-Forwarded-Proto"] = vals[1:2:2]
	}
	if tp := h["Traceparent"]; len(tp) != 1 || !validTraceparent(tp[0]) {
		// A missing or broken traceparent starts a new trace; tracestate
		// belongs to the old one and goes (W3C Trace Context §3.3).
		delete(h, "Tracestate")
		vals[2] = newTraceparent()
		h["Traceparent"] = vals[2:3:3]
	}
	st.rec.TraceParent = h["Traceparent"][0]
	if id := h["X-Request-Id"]; len(id) == 0 || id[0] == "" {
		vals[3] = newRequestID()
		h["X-Request-Id"] = vals[3:4:4]
	}
	st.rec.RequestID = h["X-Request-Id"][0]
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = p.emptyUA // keep Go's transport from adding its own
	}
}

// removeHopHeaders deletes the hop-by-hop headers and those that
// Connection names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v = nextToken(v)
			if tok != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// hasToken reports whether the comma-separated values hold token
// (case-insensitive, parameters ignored).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v = nextToken(v)
			if i := strings.IndexByte(tok, ';'); i >= 0 {
				tok = strings.TrimRight(tok[:i], " \t")
			}
			if strings.EqualFold(tok, token) {
				return true
			}
		}
	}
	return false
}

// nextToken splits a comma-separated list: the first element, trimmed,
// and the rest.
func nextToken(v string) (tok, rest string) {
	tok, rest, _ = strings.Cut(v, ",")
	return strings.Trim(tok, " \t"), rest
}

// clientIP is the address part of a RemoteAddr ("ip:port", "[v6]:port").
func clientIP(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		remote = remote[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
}

func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// isGRPC reports whether a request is a gRPC call.
func isGRPC(h http.Header) bool {
	return strings.HasPrefix(firstValue(h, "Content-Type"), "application/grpc")
}

// validTraceparent checks a traceparent value (W3C Trace Context §3.2):
// version 00 is exactly version-traceid-parentid-flags in lowercase hex,
// with non-zero IDs; a later version may append "-" and more; version ff
// is invalid.
func validTraceparent(s string) bool {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if !lowerHex(s[0:2]) || s[0:2] == "ff" || !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !lowerHex(s[53:55]) {
		return false
	}
	if s[3:35] == "00000000000000000000000000000000" || s[36:52] == "0000000000000000" {
		return false
	}
	if s[0:2] == "00" {
		return len(s) == 55
	}
	return len(s) == 55 || s[55] == '-'
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newTraceparent starts a trace: random trace and parent IDs, and the
// sampled flag. The agent records no spans itself, but a downstream
// parent-based sampler would drop an unsampled trace that it would have
// sampled as a root had no traceparent come; "01" keeps its decision.
func newTraceparent() string { return string(appendTraceparent(make([]byte, 0, 55))) }

// newRequestID is a random (version 4) UUID, as Envoy's x-request-id.
func newRequestID() string { return string(appendRequestID(make([]byte, 0, 36))) }

// putHex writes v as 16 lowercase hex digits.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = digits[v&15]
		v >>= 4
	}
}

// jitter is a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
