// Package egress is the sidecar agent's outbound proxy: the application
// calls every service of its namespace at a local address (a VIP in
// 127.255.0.0/16 and the service's port), and the proxy carries each call
// to one of the service's instances, with load balancing, retries,
// timeouts, outlier detection and circuit breaking, as ECS Service
// Connect's Envoy does (reference service-connect.md §2.7–2.11).
//
// # Lifecycle
//
// New builds an idle Proxy. Listen binds a service's address and serves it
// with a Policy; ListenTLS does the same as a TLS server, which is how an
// agent's ingress requires mutual TLS from other agents. SetEndpoints and
// SetPolicy replace a service's instances and policy at any time, and
// requests that arrive afterwards use the new ones while requests in
// flight finish with what they started with. Each service keeps its
// policy, endpoint set and HTTP transport as immutable values behind
// atomic pointers: the setters build a new value and swap the pointer, the
// data path loads it once per request and never locks.
// Endpoint objects carry over updates by ID, so an endpoint's load and
// outlier state survive a SetEndpoints that keeps it. Close stops every
// listener, cuts TLS handshakes in progress, lets requests and TCP streams
// in flight finish until its context ends, and then cuts them.
//
// # Flow of a connection
//
// A listener's accept loop takes every connection (listener.go), records
// it (KindConnOpen) and looks at the service's protocol of the moment.
// TCP connections are spliced to an endpoint (tcp.go). The others are
// served, whatever the service's protocol, by the listener's own HTTP/1
// server (h1server.go: one goroutine per connection, no goroutine per
// request; the common request takes the allocation-free fast path of
// fast.go, the others net/http's request parser), which hands a
// connection that opens
// with the HTTP/2 preface (h2c with prior knowledge) to the listener's
// HTTP/2 server (internal/h2server, as the gateway's). The protocol
// decides how the proxy talks to endpoints: HTTP/1.1, or HTTP/2 (h2c in
// plain text, h2 by ALPN over TLS) for HTTP2 and GRPC. The sockets of
// HTTP connections, the clients' and the endpoints', are read and written
// with raw system calls (internal/rawio), which do not wake the runtime's
// monitor thread when the agent was idle.
//
// On a ListenTLS listener (tlslisten.go) the accept loop does the same,
// but hands each connection to a goroutine of its own for the TLS
// handshake, bounded by TLSHandshakeTimeout, so that a silent client
// holds up nobody. Then an HTTP connection is served by the listener's
// HTTP/1 server when ALPN chose HTTP/1.1 (or nothing), by the HTTP/2
// server as its *tls.Conn when ALPN chose h2, and a TCP
// connection is copied to an endpoint. A failed handshake (no or an
// untrusted client certificate, a protocol error, the timeout) closes the
// connection before any endpoint is tried; it is counted
// (Stats.TLSHandshakeFailures), logged at Debug, and its KindConnClose
// record has FailureTLSHandshake. The verified client certificate's first
// URI SAN is the records' PeerURI.
//
// # Flow of a request
//
// ServeHTTP (http.go) checks MaxRequests, sets the per-request timeout
// and, when the idle timeout is the shorter one, an idle watchdog
// (body.go), and rewrites the headers (headers.go): hop-by-hop headers
// out, Host kept, x-forwarded-for appended, traceparent and x-request-id
// added when missing. Then it tries endpoints: pick (endpoints.go) chooses
// one, try sends the request (upstream.go: HTTP/1.1 requests without a
// body or with a small one on the calling goroutine, internal/h1client;
// others with Go's http.Transport) and waits for the response headers, and shouldRetry decides, from the outcome, the
// policy's conditions, the method, the request body and the retry budget,
// whether to try again after a jittered backoff, on an endpoint not tried
// yet when there is one (retry.go). Each attempt's result feeds outlier
// detection (outlier.go); circuit breakers are in breaker.go. The final response is streamed back with its trailers; a
// failure without response becomes the proxy's own answer (503 or 504,
// or a gRPC status for gRPC calls). Every request ends with a Record to
// the Observer.
//
// # Choices
//
//   - Load balancing is least request with the power of two choices, not
//     ECS's round robin: two random endpoints, the one with fewer
//     attempts in flight wins. It spreads like round robin when endpoints
//     are equal and steers away from a slow or stuck one at once, without
//     shared counters or locks. TCP compares open connections.
//   - A retry goes to an endpoint the request has not tried when a
//     healthy one is left; ejected endpoints are used only when all are
//     ejected (Envoy's panic routing, flagged AllEjected).
//   - Request bodies stream; up to MaxReplayBody of them is kept for
//     retries (body.go). Past that, an attempt that has sent body bytes is
//     final.
//   - Non-idempotent methods (POST, PATCH, ...) are retried only after a
//     connect failure or a refused stream unless RetryNonIdempotent;
//     gRPC calls also on the gRPC statuses named in On.
//   - The per-request timeout counts from the request's arrival and
//     covers the response body: a stream longer than it is cut, as with
//     ECS's default of 15 s. The per-try timeout covers an attempt until
//     its response headers.
//   - The idle timeout applies to client connections (between requests
//     and while a request head arrives; fixed when the listener starts),
//     pooled endpoint connections, requests when it is
//     shorter than the per-request timeout, and TCP streams (in windows of
//     a quarter of it, since spliced bytes cannot be watched one by one).
//   - Outlier ejection ends lazily: an ejected endpoint carries the time
//     it is re-admitted, and no timer runs.
//   - Upgrades (WebSocket) are not carried by the HTTP family: Upgrade is a
//     hop-by-hop header. Serve such services as TCP.
//
// # Mutual TLS between agents
//
//   - ListenTLS clones its tls.Config once: fields changed afterwards are
//     not seen. Certificates rotate through GetCertificate, and client CAs
//     through GetConfigForClient, which crypto/tls calls per handshake;
//     connections keep the certificate they started with.
//   - ALPN offers h2 then http/1.1 unless the config names its own
//     protocols. Inside TLS there is no h2c: HTTP/2 needs ALPN.
//   - TCP streams over TLS are not spliced: their bytes go through pooled
//     buffers, and a half-close toward a TLS side is a close_notify alert.
//     A stream that is cut (idle, broken, Close) closes the TCP connection
//     without close_notify, so that the client cannot take it for a clean
//     end.
//   - In TLS 1.3 a client finishes its handshake before the server has
//     checked its certificate, and learns of a refusal by an alert on its
//     first read. So a failed handshake half-closes the connection and
//     discards its input for up to half a second before closing, lest a
//     reset overtake the alert; and, as a client, the proxy takes a
//     certificate-refusal alert (or an HTTP/2 connection that died before
//     its first stream) for a connect failure: the endpoint never read the
//     request, so it is retried on another endpoint whatever its method.
//     A TCP stream refused that way has already begun: the client's
//     connection is closed, not retried.
//   - PeerURI is set only when crypto/tls verified the certificate
//     (VerifyClientCertIfGiven, RequireAndVerifyClientCert); a config
//     that verifies by itself (VerifyPeerCertificate with
//     RequireAnyClientCert) gets no PeerURI. The identity is recorded, not
//     passed to endpoints in a header.
//   - Connection records of HTTP connections over TLS count bytes on the
//     wire, TLS records included.
package egress
