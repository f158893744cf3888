// Package h2server is Trellis's HTTP/2 server (RFC 9113): it serves the
// streams of HTTP/2 connections with an http.Handler, as net/http's server
// does, but spends fewer goroutine switches and system calls per request.
//
// # Design
//
//   - One goroutine per connection (ServeConn's) reads frames through a
//     16 KiB buffer and acts on each: stream state, flow control, HPACK
//     decoding (golang.org/x/net/http2/hpack), settings, pings.
//   - A request's handler runs on a goroutine of its own from when its
//     header block is complete, taken from the Server's idle workers
//     (workers.go): a worker that has run a handler keeps the stack it grew
//     for the next one (until a garbage collection finds it idle and
//     shrinks it), where a new goroutine per stream grew and copied its
//     stack on every request (6 % of a proxied request's CPU). Up to 256
//     workers wait; Shutdown ends them. Handlers must not leave a worker
//     locked to its thread (runtime.LockOSThread) or labelled.
//   - The request's http.Request is built from the decoded
//     fields after the checks of §8.2–8.3 (pseudo-headers, lower-case
//     names, no connection-specific fields, te: trailers only,
//     content-length against the DATA received, a Host field only when it
//     agrees with :authority); a malformed request is reset with
//     PROTOCOL_ERROR and never reaches the handler. Request.Host is
//     :authority, and Host leaves the header as with net/http's HTTP/1
//     requests.
//   - A Handler that is also a StreamHandler (direct.go) is offered each
//     request (not CONNECT, nor one that expects 100-continue) before
//     any http.Request exists: a Request carries the pseudo-headers, the
//     checked fields (Host out, cookie fields joined) and the body, if
//     any, with its flow control as ServeHTTP's requests have it; and answers
//     with WriteHead (fields in HPACK form), Write, Flush and
//     SetTrailers. Its stream has no context; Watch has a connection
//     closed when the stream is reset, which cuts a handler waiting on
//     it. A request ServeStream declines gets its
//     http.Request then, and ServeHTTP. For a proxy that forwards from
//     the fields this saves the request, header map, URL and context
//     allocations (about fifteen).
//   - Output is one queue per connection (write.go). Handlers encode their
//     HEADERS (under the connection's lock, which keeps the HPACK
//     encoder's state in the order frames are sent) and DATA frames into
//     it; whoever then finds no write in progress writes the queue, and
//     goes on writing what others appended meanwhile until it is empty.
//     So every stream that answers while a write is under way shares the
//     next write, and no goroutine is spent per write. A stream whose
//     handler has returned yields once before it writes, so that the
//     handlers the same poll made ready join that write (under h2load:
//     1.3 writes per request instead of 2). The reading
//     goroutine writes its own frames (acknowledgements, window updates,
//     resets) from a short-lived goroutine, so that it keeps reading while
//     a client that does not read holds a write.
//   - Headers leave with the first body bytes, a Flush, or the handler's
//     return; END_STREAM is set on the last DATA frame when it is still
//     queued, so a small response is one HEADERS and one DATA frame.
//   - Receive windows: 1 MiB per stream, 4 MiB per connection (which
//     bounds the request bodies a connection buffers ahead of its
//     handlers), given back in quarters as handlers read.
//
// # Limits
//
//   - MaxConcurrentStreams (250) counts handlers still running, including
//     those of streams the client has reset: rapid resets
//     (CVE-2023-44487) cannot start more work than that. Streams beyond
//     it are refused (REFUSED_STREAM).
//   - A header list is bounded by MaxHeaderBytes (decoded size, as
//     SETTINGS_MAX_HEADER_LIST_SIZE counts); a header block still arriving
//     in CONTINUATION frames past twice that ends the connection with
//     ENHANCE_YOUR_CALM before any decoding.
//   - Answers to the client's own frames (PING and SETTINGS
//     acknowledgements, resets of its faulty streams) count against 1 MiB
//     queued and unread: past it the client is cut with ENHANCE_YOUR_CALM.
//     Handlers wait instead, and DATA frames stay at 16 KiB, so a
//     connection's queue holds at most about 1 MiB of responses. A write
//     that stalls for WriteTimeout (30 s) ends the connection; a closing
//     connection waits at most a second for a write in progress.
//   - A request body is buffered up to the stream's window while its
//     handler reads slower than the client sends; a body the handler
//     leaves unread is dropped when it returns, its bytes given back to
//     the connection's window.
//   - Frames the client sent before it saw a reset of ours (the last
//     2×MaxConcurrentStreams streams we reset) are ignored (§5.1).
//   - Server push, priorities and extended CONNECT are not implemented:
//     SETTINGS_ENABLE_PUSH is 0 and PRIORITY frames are checked, then
//     ignored.
//
// # Differences from net/http's HTTP/2 server
//
//   - No Content-Type sniffing and no Content-Length is added: a proxy
//     passes on what its target said. A Date header is added when the
//     handler sets none.
//   - A response shorter than its declared Content-Length is reset with
//     INTERNAL_ERROR rather than ended.
//   - Idle connections are closed by the caller (the gateway's connection
//     timers) or after IdleTimeout.
//
// Conformance: h2spec 2.6 --strict passes all 147 cases (run by hand; see
// BENCHMARKS.md and the gateway docs).
package h2server
