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
// A port's accept loop (listener.go) looks at the current table: a
// plain-text port hands the connection, through the HTTP/1 framing guard
// (h1guard.go), to the port's http.Server (HTTP/1.1 and HTTP/2 with prior
// knowledge). A TLS port reads the ClientHello without consuming it
// (clienthello.go) and picks the listener by server name: TLS_PASSTHROUGH
// splices bytes to a target (passthrough.go); HTTPS terminates TLS 1.2/1.3
// with the service's certificate, ALPN h2 or http/1.1; an unknown name gets
// a handshake_failure alert.
//
// # Flow of a request
//
// ServeHTTP (handler.go) loads the table and routes without allocating
// (table.go, match.go): Host (or :authority) → listener of the port; on
// HTTPS the Host must belong to the service the SNI chose, otherwise 421.
// The path is normalised (pathnorm.go) and rules are tried in order; the
// first match answers with its fixed status or forwards: a target group is
// picked by smooth weighted round robin, then a routable target round robin
// (failing open when none is routable). forward.go rewrites headers
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
//   - Requests the framing guard rejects are answered 400 by net/http and
//     produce no Record (no service is known yet).
//   - Upgrade (WebSocket) is not forwarded: Upgrade is hop-by-hop, as on
//     Lattice HTTP listeners.
//   - The idle timeout closes client connections with no request in
//     flight; the connection cap (MaxConnectionDuration) applies to
//     passthrough connections and HTTP/1 connections, not to HTTP/2 ones.
package proxy
