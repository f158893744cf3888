package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// The HTTP/1 fast path serves HTTP/1.x connections without net/http,
// plain-text ones and HTTPS ones whose ALPN chose HTTP/1.1 (or nothing):
// one goroutine per connection reads each request head into a reused
// h1wire.Head with the framing guard's own checks, routes it with the
// shared route function, and forwards it over the fast path's pooled
// target connections (h1forward.go, h1pool.go), streaming bodies in both
// directions. Nothing is allocated per request in the steady state: the
// connection state, its buffers and the access-log record are reused,
// and the record's strings are cached per connection.
//
// The connection goes to the port's http.Server (through the framing
// guard, replaying the bytes already read) when a request is one the fast
// path leaves to net/http: the HTTP/2 preface (h2c with prior knowledge),
// a request target not in origin form ("*", absolute form, CONNECT's
// authority form), or a request for a listener that forwards to HTTPS
// target groups (listenerRoute.h1fast). It stays there for the rest of its
// life. An HTTPS connection whose listener the fast path does not serve
// goes to the http.Server after its handshake.

// h1conn is the fast path's state of one client connection, pooled.
type h1conn struct {
	ps *portServer
	cc *clientConn
	// c is the connection requests are read from and answers written
	// to: cc, or the TLS connection over it (tc).
	c   net.Conn
	tc  *tls.Conn
	in  h1wire.Buf    // from the client
	out *bufio.Writer // to the client, through cw
	up  *bufio.Writer // to the current request's target, through uw
	// upHead is the head (and small body) of the current request toward
	// its target, written in one call.
	upHead wireBuf
	fwd    routed // where the current request goes, while it is forwarded
	cw     h1wire.DeadlineWriter

	head h1wire.Head // the current request
	resp h1wire.Head // the current response
	ends []int32
	st   reqState

	remote, ip string // the client's address, and its IP for x-forwarded-for
	served     int    // requests served
	http2      bool   // handed off at the HTTP/2 preface
	state      atomic.Int32

	// The current request.
	http10 bool
	isHead bool
	keep   bool // the client connection stays open after the response
	body   bodyKind
	remain int64     // Content-Length
	unread bool      // request body bytes (may) remain unread
	expect bool      // 100-continue to send before reading the body
	end    time.Time // when the answer was complete: a clock reading reused

	strs struct{ method, path, host, ua string }
	date h1wire.Date
	// The answer's copies.
	h1wire.Relay

	// A streamed request body (duplex.go): its goroutine, its copies,
	// and the client connection as it reads it (in.C meanwhile).
	pump    bodyPump
	inRelay h1wire.Relay
	rcut    cutReader
}

type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
)

// Connection states, for draining: an idle connection (waiting for a
// request) is closed by the drain; an active one finishes its request.
const (
	h1Idle int32 = iota
	h1Active
	h1Closed
)

// h1next is what becomes of a connection after a request.
type h1next uint8

const (
	h1Keep    h1next = iota
	h1Close          // close once the response is out
	h1Linger         // close, letting the client read the answer first (input unread)
	h1Abort          // close at once: the response is truncated
	h1HandOff        // give the connection to net/http
)

const (
	clientWriteBuf = 4 << 10
	clientReadBuf  = 4 << 10
	// lingerTime and lingerBytes bound how long a connection closed with
	// unread input is drained so that the client reads the answer rather
	// than a reset (net/http waits 500 ms too).
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

func newH1conn() any {
	return &h1conn{
		in:  h1wire.Buf{B: make([]byte, clientReadBuf)},
		out: bufio.NewWriterSize(nil, clientWriteBuf),
		up:  bufio.NewWriterSize(nil, clientWriteBuf),
	}
}

// serveH1 serves a plain-text connection: HTTP/1.x on the fast path,
// everything else handed to the port's http.Server.
func (ps *portServer) serveH1(c net.Conn) {
	defer ps.wg.Done()
	ps.serveFast(newClientConn(ps.e, rawio.Wrap(c)), nil)
}

// serveFast serves cc on the fast path, over tc when the connection is
// TLS (its handshake done).
func (ps *portServer) serveFast(cc *clientConn, tc *tls.Conn) {
	e := ps.e
	h := e.h1conns.Get().(*h1conn)
	h.ps, h.cc, h.c, h.tc = ps, cc, net.Conn(cc), tc
	if tc != nil {
		h.c = tc
	}
	h.Bufs, h.inRelay.Bufs = &e.buffers, &e.buffers
	h.in.C = h.c
	h.in.R, h.in.W, h.in.Until, h.in.Idle = 0, 0, time.Time{}, e.cfg.IdleTimeout
	h.cw = h1wire.DeadlineWriter{C: h.c, D: e.cfg.IdleTimeout}
	h.out.Reset(&h.cw)
	h.remote = cc.RemoteAddr().String()
	h.ip = clientIP(h.remote)
	h.served, h.http2 = 0, false
	h.state.Store(h1Idle)
	defer h.release()
	defer func() {
		// A bug must cost one connection, not the process (net/http
		// recovers its handlers' panics the same way).
		if v := recover(); v != nil {
			e.log.Error("panic serving a connection", "remote", h.remote, "panic", v, "stack", string(debug.Stack()))
			// A streamed body's goroutine still uses h: it is joined
			// (cut) before h goes back to the pool.
			h.settleBody()
			ps.untrackH1(h)
			_ = cc.Close()
		}
	}()
	if !ps.trackH1(h) {
		_ = cc.Close()
		return
	}
	cc.startIdle()
	// As in net/http, the first request's head must arrive within
	// ReadHeaderTimeout of the accept.
	h.in.ArmRead(time.Now(), e.cfg.ReadHeaderTimeout)
	next := h1Close
	for {
		if !h.waitRequest() {
			next = h1Close
			break
		}
		cc.begin()
		next = h.serveRequest()
		if h.end.IsZero() {
			cc.end()
		} else {
			cc.endAt(e.at(h.end))
		}
		h.served++
		if next != h1Keep {
			break
		}
		h.state.Store(h1Idle)
		if ps.draining.Load() {
			next = h1Close
			break
		}
	}
	ps.untrackH1(h)
	switch next {
	case h1HandOff:
		h.handOff()
	case h1Linger:
		h.lingerClose()
	case h1Close:
		if h.tc != nil {
			// close_notify, then cc closed: the answer ended whole, which
			// a body framed by the close needs (a truncation, h1Abort,
			// has none).
			_ = h.tc.Close()
		} else {
			_ = cc.Close()
		}
	default:
		_ = cc.Close()
	}
}

// release returns the connection state to the pool.
func (h *h1conn) release() {
	e := h.ps.e
	h.Relay.Release()
	h.ps, h.cc, h.c, h.tc, h.in.C = nil, nil, nil, nil, nil
	h.cw = h1wire.DeadlineWriter{}
	h.out.Reset(nil)
	h.up.Reset(nil)
	if cap(h.upHead) > 16<<10 {
		h.upHead = nil // a large head grew it
	}
	h.strs.method, h.strs.path, h.strs.host, h.strs.ua = "", "", "", ""
	if len(h.in.B) > 4*clientReadBuf {
		h.in.B = make([]byte, clientReadBuf) // a large head grew it
	}
	if len(h.resp.Fields) > 256 || len(h.head.Fields) > 256 {
		h.head, h.resp = h1wire.Head{}, h1wire.Head{}
	}
	e.h1conns.Put(h)
}

// waitRequest waits for the first bytes of the next request and marks the
// connection active; false when the connection is done.
func (h *h1conn) waitRequest() bool {
	if h.served > 0 {
		// Waiting for a request is the idle timeout's business; a head
		// that comes in pieces arms ReadHeaderTimeout (armHeadDeadline).
		h.in.ClearDeadline()
	}
	if h.in.Buffered() == 0 {
		if err := h.in.Fill(len(h.in.B)); err != nil {
			return false
		}
	}
	return h.state.CompareAndSwap(h1Idle, h1Active)
}

// armHeadDeadline starts ReadHeaderTimeout once a head needs more than
// one read (a head that arrives whole costs no timer).
func (h *h1conn) armHeadDeadline() {
	if h.in.Until.IsZero() {
		h.in.ArmRead(time.Now(), h.ps.e.cfg.ReadHeaderTimeout)
	}
}

// serveRequest reads, routes and answers one request.
func (h *h1conn) serveRequest() h1next {
	e := h.ps.e
	hd := &h.head
	hd.Reset()
	h.end = time.Time{}
	var err error
	h.ends, err = h.in.HeadLines(h.ends[:0], e.cfg.MaxHeaderBytes, true, h.armHeadDeadline)
	if err != nil {
		return h.headError(err)
	}
	if err := hd.ParseRequest(h.in.B[h.in.R:], h.ends); err != nil {
		return h.headError(err)
	}
	if hd.Info.Pri || len(hd.Target) == 0 || hd.Target[0] != '/' {
		h.http2 = hd.Info.Pri
		return h1HandOff
	}
	// What net/http checks once the guard has passed a head.
	rawURI := unsafe.String(unsafe.SliceData(hd.Target), len(hd.Target))
	rawPath := rawURI
	if i := strings.IndexByte(rawPath, '?'); i >= 0 {
		rawPath = rawPath[:i]
	}
	switch {
	case !validEscapes(rawPath):
		return h.headError(errBadTarget)
	case !hd.HTTP10 && !hd.HasHost:
		return h.badRequest("missing required Host header")
	case hd.HasHost && !httpguts.ValidHostHeader(unsafe.String(unsafe.SliceData(hd.Host), len(hd.Host))):
		return h.badRequest("malformed Host header")
	}
	h.http10 = hd.HTTP10
	h.isHead = string(hd.Method) == http.MethodHead
	h.expect = false
	if hd.HasExpect {
		if !h1wire.HasToken(hd.Expect, "100-continue") {
			if len(hd.Expect) > 0 {
				return h.expectationFailed()
			}
		} else if !h.http10 && (hd.Info.TE > 0 || hd.Info.CLValue > 0) {
			h.expect = true
		}
	}
	h.body, h.remain, h.unread = bodyNone, 0, false
	switch {
	case hd.Info.TE > 0:
		h.body, h.unread = bodyChunked, true
	case hd.Info.CLValue > 0:
		h.body, h.remain, h.unread = bodyLength, hd.Info.CLValue, true
	}
	h.keep = !hd.ConnClose && (!h.http10 || hd.ConnKeepAlive)
	start := time.Now()
	if e.at(start)-h.cc.start > int64(e.cfg.MaxConnectionDuration) {
		h.keep = false
	}

	st := &h.st
	rec := &st.rec
	rec.Start = start
	rec.SourceAddr = h.remote
	rec.Method = methodString(hd.Method, &h.strs.method)
	rec.Path = cachedString(&h.strs.path, hd.Target)
	rec.Proto = "HTTP/1.1"
	if h.http10 {
		rec.Proto = "HTTP/1.0"
	}
	rec.Host = cachedString(&h.strs.host, hd.Host)
	rec.UserAgent = cachedString(&h.strs.ua, hd.UserAgent)
	rec.ListenerProtocol = model.ProtocolHTTP
	if h.tc != nil {
		rec.ListenerProtocol = model.ProtocolHTTPS
		rec.SNI, rec.TLSVersion, rec.TLSCipher = h.cc.sni, h.cc.tlsVersion, h.cc.tlsCipher
	}
	q := &st.q
	q.method, q.host, q.header, q.proto = rec.Method, rec.Host, hd, 1
	rt, ge := h.ps.route(st, q, rec.Path[:len(rawPath)], h.cc, viaH1Fast)
	if ge == errHandOff {
		*st = reqState{}
		return h1HandOff
	}
	h.in.R += hd.Size // the head is consumed; its bytes stay put until the body is read
	if rt.lr != nil {
		// The service's idle timeout bounds the body's reads and writes.
		h.in.Idle, h.cw.D = rt.lr.svc.idle, rt.lr.svc.idle
	}

	switch {
	case ge != nil:
	case rt.ru.fixed != 0:
		rec.Generated = true
		rec.Status = rt.ru.fixed
		if h.unread {
			h.keep = false
		}
		h.writeAnswer(rt.ru.fixed, "")
	default:
		ge = h.forward(&rt)
	}
	next := h1Keep
	if ge != nil {
		rec.FailureReason = ge.reason
		switch {
		case ge == errAbort || ge == errClientGone:
			next = h1Abort
		case ge.status != 0:
			rec.Generated = true
			rec.Status = ge.status
			rec.BytesSent = int64(len(ge.body))
			if h.unread {
				h.keep = false
			}
			h.writeAnswer(ge.status, ge.body)
		}
	}
	if next == h1Keep && !h.keep {
		next = h1Close
		if h.unread || h.in.Buffered() > 0 {
			next = h1Linger
		}
	}
	if h.end.IsZero() {
		h.end = time.Now()
	}
	rec.Duration = h.end.Sub(start)
	if e.cfg.Observer != nil {
		e.cfg.Observer.Observe(rec)
	}
	*st = reqState{}
	if next != h1Abort {
		h.cw.Now = h.end
		if h.out.Flush() != nil {
			next = h1Abort
		}
		h.cw.Now = time.Time{}
	}
	h.Relay.Release()
	return next
}

// validEscapes reports whether every '%' of p starts a percent-encoding.
func validEscapes(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			if i+2 >= len(p) || !h1wire.IsHex(p[i+1]) || !h1wire.IsHex(p[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// headError answers a head that cannot be served. Read errors and
// timeouts close the connection silently, as net/http does; a framing
// violation gets net/http's plain 400 (no Record: no service is known).
func (h *h1conn) headError(err error) h1next {
	var ge *h1wire.FramingError
	switch {
	case errors.As(err, &ge):
		h.ps.e.log.Debug("request rejected", "remote", h.remote, "reason", ge.Reason)
	case errors.Is(err, h1wire.ErrHeadTooLarge):
		h.ps.e.log.Debug("request rejected", "remote", h.remote, "reason", "request head too large")
	default:
		return h1Close
	}
	_, _ = h.out.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
	_ = h.out.Flush()
	return h1Linger
}

// badRequest answers what net/http calls a bad request, with its text.
func (h *h1conn) badRequest(text string) h1next {
	_, _ = h.out.WriteString("HTTP/1.1 400 Bad Request: ")
	_, _ = h.out.WriteString(text)
	_, _ = h.out.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: ")
	_, _ = h.out.WriteString(text)
	_ = h.out.Flush()
	return h1Linger
}

// expectationFailed answers an Expect other than 100-continue with 417,
// as net/http does.
func (h *h1conn) expectationFailed() h1next {
	h.http10, h.isHead, h.keep = h.head.HTTP10, false, false
	h.statusLine(http.StatusExpectationFailed)
	_, _ = h.out.WriteString("Connection: close\r\n")
	h.writeDate()
	_, _ = h.out.WriteString("Content-Length: 0\r\n\r\n")
	_ = h.out.Flush()
	return h1Linger
}

// writeAnswer writes a generated answer as writeGenerated does: a plain
// text body (empty for fixed responses), with Date and the connection's
// fate. It is left in h.out.
func (h *h1conn) writeAnswer(status int, body string) {
	w := h.out
	if status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols {
		// An informational fixed response: net/http sends it, then an
		// empty 200 once the handler returns.
		h.statusLine(status)
		_, _ = w.WriteString("\r\n")
		status = http.StatusOK
	}
	h.statusLine(status)
	if body != "" {
		_, _ = w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	}
	if bodyAllowed(status) {
		_, _ = w.WriteString("Content-Length: ")
		_, _ = w.Write(strconv.AppendInt(h.Num[:0], int64(len(body)), 10))
		_, _ = w.WriteString("\r\n")
	}
	h.writeDate()
	h.writeConnection()
	_, _ = w.WriteString("\r\n")
	if body != "" && !h.isHead {
		_, _ = w.WriteString(body)
	}
}

// bodyAllowed reports whether a response of this status has a body (and
// so a Content-Length), as net/http decides.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// statusLine writes the status line of a generated answer.
func (h *h1conn) statusLine(code int) { h1wire.WriteStatusLine(h.out, h.http10, code) }

// writeConnection tells the client what becomes of the connection: close
// for HTTP/1.1, keep-alive for HTTP/1.0 (whose default is to close).
func (h *h1conn) writeConnection() {
	if h.keep && h.ps.draining.Load() {
		h.keep = false
	}
	switch {
	case !h.keep && !h.http10:
		_, _ = h.out.WriteString("Connection: close\r\n")
	case h.keep && h.http10:
		_, _ = h.out.WriteString("Connection: keep-alive\r\n")
	}
}

// writeDate writes a Date header, formatted once a second.
func (h *h1conn) writeDate() { h.date.WriteField(h.out) }

// handOff gives the connection, with the bytes read but not served, to
// the port's http.Server through the framing guard.
func (h *h1conn) handOff() {
	ps := h.ps
	h.in.ClearDeadline()
	// net/http sets no write deadline of its own: the fast path's last
	// one would cut its first answer.
	_ = h.c.SetWriteDeadline(time.Time{})
	if h.tc != nil {
		// No HTTP/2 here: ALPN chose HTTP/1.1, so a preface is net/http's
		// to refuse.
		gc := h1wire.NewTLSGuardConn(h.tc, ps.e.cfg.MaxHeaderBytes, ps.e.log)
		gc.Replay(h.in.B[h.in.R:h.in.W])
		ps.pushHTTP(gc)
		return
	}
	gc := h1wire.NewGuardConn(h.cc, ps.e.cfg.MaxHeaderBytes, ps.e.log)
	gc.Replay(h.in.B[h.in.R:h.in.W])
	if ps.h2 != nil && h.http2 {
		// On a goroutine of its own, so that this connection state goes
		// back to the pool now rather than when the connection ends.
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			_ = ps.h2.ServeConn(context.Background(), gc)
		}()
		return
	}
	ps.pushHTTP(gc)
}

// lingerClose closes a connection whose input was not all read: the
// write side first, then what the client still sends is read and dropped
// for a moment, so that the answer is not lost to a reset.
func (h *h1conn) lingerClose() {
	cc := h.cc
	var cw interface{ CloseWrite() error }
	if h.tc != nil {
		cw = h.tc // close_notify
	} else {
		cw, _ = cc.Conn.(interface{ CloseWrite() error })
	}
	if cw != nil {
		_ = cw.CloseWrite()
		_ = h.c.SetReadDeadline(time.Now().Add(lingerTime))
		for n := 0; n < lingerBytes; {
			m, err := h.c.Read(h.in.B)
			n += m
			if err != nil {
				break
			}
		}
	}
	_ = cc.Close()
}

// methodString returns the method as a string without allocating for the
// registered methods; others are cached per connection.
func methodString(b []byte, cache *string) string {
	switch string(b) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodHead:
		return http.MethodHead
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodTrace:
		return http.MethodTrace
	}
	return cachedString(cache, b)
}

// cachedString returns b as a string, reusing *cache when it is equal:
// a connection's requests mostly repeat their host, user agent and path.
func cachedString(cache *string, b []byte) string {
	if string(b) != *cache {
		*cache = string(b)
	}
	return *cache
}

// trackH1 registers a fast-path connection for draining; false once the
// port drains.
func (ps *portServer) trackH1(h *h1conn) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.draining.Load() {
		return false
	}
	ps.h1[h] = struct{}{}
	return true
}

func (ps *portServer) untrackH1(h *h1conn) {
	ps.mu.Lock()
	delete(ps.h1, h)
	ps.mu.Unlock()
}

// drainH1 stops keep-alive on the fast path's connections: idle ones are
// closed now, active ones after their response.
func (ps *portServer) drainH1() {
	ps.mu.Lock()
	ps.draining.Store(true)
	for h := range ps.h1 {
		if h.state.CompareAndSwap(h1Idle, h1Closed) {
			_ = h.cc.Conn.Close()
		}
	}
	ps.mu.Unlock()
}
