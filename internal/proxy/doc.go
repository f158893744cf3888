// Package proxy is the data-plane engine of a gateway: it serves the
// listeners of a snapshot.Snapshot the way VPC Lattice does.
//
// # Lifecycle
//
// New builds an idle Engine. Apply compiles a snapshot into an immutable
// table (compile.go) and publishes it with one atomic pointer store; it then
// opens a port for every new listener port and drains ports no longer used
// (stop accepting, let in-flight requests finish, cut what is left after
// Config.DrainTimeout). Ports that stay are never touched: their
// connections and requests continue, and each new request reads the newest
// table. A broken object (listener, rule, target group) is disabled and
// logged; the rest keeps serving. Close drains every port.
//
// # Flow of a connection
//
// A port's accept loop (listener.go) looks at the current table. A
// plain-text port serves the connection on the HTTP/1 fast path
// (h1conn.go): one goroutine per connection reads each request head into
// a reused structure (h1wire.Head) with the framing guard's checks
// (h1wire.GuardConn), routes it with the same function as the net/http path
// (route.go) and forwards it over the fast path's own keep-alive target
// connections (h1forward.go, h1pool.go), bodies streamed both ways. A
// connection that opens with the HTTP/2 preface (h2c with prior
// knowledge) goes, with the bytes already read and through the framing
// guard, to the port's h2server.Server, whose handler is the portServer:
// ServeStream (the direct path, below) for the requests it takes, and
// ServeHTTP for the rest (net/http's HTTP/2 server, ServeHTTP only, when
// Config.GoHTTP2). What else it leaves to
// net/http — a request target not in origin form (absolute form, "*",
// CONNECT), a listener that forwards to HTTPS target groups — hands the
// connection the same way to the port's http.Server for the rest of its
// life. A TLS port reads the ClientHello
// without consuming it
// (clienthello.go) and picks the listener by server name: TLS_PASSTHROUGH
// splices bytes to a target (passthrough.go); HTTPS terminates TLS 1.2/1.3
// with the service's certificate, ALPN h2 (served by the h2server.Server)
// or http/1.1: the HTTP/1 fast path over the TLS connection when the
// listener is one it serves (its hand-offs replay the decrypted bytes
// through the framing guard), the http.Server otherwise; an unknown name
// gets a handshake_failure alert. Client connections (but for passthrough) and target connections
// are read and written with raw system calls (internal/rawio), which do
// not wake the runtime's monitor thread when the gateway was idle.
//
// # Flow of a request
//
// The three request paths — ServeHTTP (handler.go), the HTTP/1 fast path
// and the HTTP/2 direct path — call route (route.go), which loads the table and routes without allocating
// (table.go, match.go), reading headers through a small interface
// (headerReader): Host (or :authority) → listener of the port; on HTTPS
// the Host must belong to the service the SNI chose, otherwise 421; the
// auth step (SigV4, policies) will sit here, between the listener and its
// rules. The path is normalised (internal/urlpath) and rules are tried in
// order; the first match answers with its fixed status or forwards: a
// target group is picked by smooth weighted round robin, then a routable
// target round robin (failing open when none is routable). On the fast
// path h1forward.go rewrites the head the way forward.go does and relays
// the response, allocating nothing per request. The HTTP/2 direct path
// (h2direct.go) takes requests without a body, and POST, PUT and PATCH
// requests with one (h2body.go), from the h2server's decoded fields, to
// listeners whose forward rules all lead to HTTP1 groups over
// HTTP and which have no auth policy: it writes the HTTP/1.1 head from the
// fields, the same headers removed and added, over the fast path's pools,
// parses the response head with h1wire and sends it back as HTTP/2 fields
// (a chunked body's trailers as trailers), with no http.Request, header
// map or per-request context; a client resetting its stream cuts the
// target connection (h2server's Watch). Other requests and listeners are
// declined before anything is picked, and ServeHTTP serves them. On the
// net/http path
// forward.go rewrites headers
// (hop-by-hop and gateway-owned headers removed, x-forwarded-* and
// x-amzn-lattice-* set), applies Lattice's protocol-version matrix and sends
// the request over the group's pooled transport (upstream.go); the response
// streams back with a pooled buffer, flushed per read for gRPC and other
// streams, trailers included. Answers the gateway makes itself (404, 421,
// 502, 503, 504, fixed responses) come from errors.go. Every request, and
// every passthrough connection, ends with one Record to the Observer.
//
// # Choices and limits
//
//   - Several listeners on one port: the first by listener ID decides
//     whether the port is plain text (HTTP) or TLS (HTTPS and
//     TLS_PASSTHROUGH, told apart by server name); a listener of the other
//     family, or a host or server name already taken on the port, is
//     rejected and logged. A port whose family changes between snapshots
//     keeps its established connections, but their requests are answered
//     404 until the clients reconnect.
//   - HTTPS: a ClientHello without server name is served by the port's
//     only HTTPS listener, and fails when there are several.
//   - Requests the framing guard rejects are answered 400 (by net/http, or
//     with net/http's bytes on the fast path) and produce no Record (no
//     service is known yet); so are heads net/http itself refuses (no
//     Host in HTTP/1.1, a malformed Host, a bad percent-encoding in the
//     path), and an Expect other than 100-continue is answered 417.
//   - Fast path, toward targets: one keep-alive pool per target address
//     (at most MaxIdleConnsPerTarget idle, closed after the service's idle
//     timeout); a request without a body and with an idempotent method is
//     sent again once on a new connection when a reused one fails before
//     any byte of the response (a POST is not: it may have been carried
//     out); every reuse is probed first (a non-blocking peek), so a
//     closed connection or bytes nobody asked for are never taken for an
//     answer.
//     The request body is sent before the response is read (no full
//     duplex); bodies of unknown length reach HTTP/1.1 clients chunked and
//     HTTP/1.0 clients delimited by the close. A write blocked, or a body
//     read silent, for the service's idle timeout ends the request. The
//     client going away is noticed when its answer is written, not while
//     the target works on it.
//   - net/http path, toward HTTP1 groups over HTTP: requests with no body
//     or a body of known length up to h1client.MaxBody go through
//     internal/h1client (written and answered on the handler's goroutine,
//     same retry and probe rules as the fast path); the others, and
//     HTTP/2 and HTTPS groups, through http.Transport.
//   - Upgrade (WebSocket) is not forwarded: Upgrade is hop-by-hop, as on
//     Lattice HTTP listeners.
//   - The idle timeout closes client connections with no request in
//     flight; the connection cap (MaxConnectionDuration) applies to
//     passthrough connections and HTTP/1 connections, not to HTTP/2 ones.
package proxy
