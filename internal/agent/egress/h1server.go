package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// The HTTP/1 server of plain-text listeners. Each connection is served by
// one goroutine: it reads a request with http.ReadRequest (net/http's own
// parser), runs the service's ServeHTTP with h1Writer as the
// ResponseWriter, and reads the next. net/http's server also starts a
// goroutine per request to watch the connection while the handler runs;
// on a proxy hop that wake-up costs as much as the exchange, so this
// server watches only a bodiless request still unanswered after
// watchAfter (armWatch), from a timer reused per connection. A client
// that leaves while a request with a body waits is noticed when the
// answer is written to it (the per-request timeout still bounds the
// wait).
//
// A connection that opens with the HTTP/2 preface (h2c with prior
// knowledge: gRPC and HTTP/2 clients) goes to the listener's HTTP/2
// server, which serves it from then on, the bytes already read replayed.

// h1Conn states, for draining: an idle connection is closed by the
// drain; an active one finishes its request first.
const (
	h1Idle int32 = iota
	h1Active
	h1Closed
)

const (
	// maxHeadBytes bounds a request head, as http.Server's default.
	maxHeadBytes = http.DefaultMaxHeaderBytes + 4096
	// maxPostHandlerDiscard is how much of a request body the handler
	// left unread is read and dropped so that the connection can serve on
	// (net/http's figure); past it the connection closes.
	maxPostHandlerDiscard = 256 << 10
	h1ServerBuf           = 4 << 10
)

// h1Server tracks a listener's HTTP/1 connections, for draining.
type h1Server struct {
	l        *listener
	idle     time.Duration // between requests; 0: none
	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*h1ServerConn]struct{}
	empty    chan struct{} // closed when conns empties while draining
}

func newH1Server(l *listener, idle time.Duration) *h1Server {
	return &h1Server{l: l, idle: idle, conns: make(map[*h1ServerConn]struct{})}
}

// h1ServerConn is one client connection.
type h1ServerConn struct {
	srv *h1Server
	cc  *clientConn // the TCP connection, which records itself
	// nc carries the requests: cc, or the *tls.Conn over it on a TLS
	// listener (then tls is its state, for Request.TLS).
	nc     net.Conn
	tls    *tls.ConnectionState
	lr     io.LimitedReader // nc, limited while a head is read
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	state  atomic.Int32
	w      h1Writer
	// ctx is the context of the connection's requests, cancelled when the
	// connection is cut so that what they wait on ends.
	ctx    context.Context
	cancel context.CancelFunc
	// linger: the connection closes with client bytes unread.
	linger bool
	// fast is the fast path's state (fast.go), made at its first request.
	fast *fastState
	// fastUp is the endpoint connection a fast-path request waits on, for
	// cutFast.
	fastUp atomic.Pointer[fastUp]

	// The watch for a client that leaves while its request waits (see
	// armWatch).
	watch      *time.Timer
	watchMu    sync.Mutex
	watchState uint8         // watchIdle, watchArmed or watchRunning; guarded by watchMu
	watchDone  chan struct{} // closed when the running watch ends; guarded by watchMu
	gone       atomic.Bool   // the client closed its side
}

// Watch states.
const (
	watchIdle uint8 = iota
	watchArmed
	watchRunning
)

// watchAfter is how long a request without body waits on its endpoint
// before its connection is watched for the client leaving. Most requests
// are answered sooner and never pay for a watch.
const watchAfter = 200 * time.Millisecond

// armWatch starts the watch timer for the current request: if the request
// is still being served after watchAfter, a read on the connection (the
// request is bodiless, so nothing else reads it) tells whether the client
// has closed it, and if so the requests' context is cancelled so that the
// endpoint's exchange ends, as net/http's server does. disarmWatch must
// follow once the request is answered.
func (c *h1ServerConn) armWatch() {
	if c.watch == nil {
		c.watch = time.AfterFunc(time.Hour, c.runWatch)
	}
	c.watchMu.Lock()
	c.watchState = watchArmed
	c.watchMu.Unlock()
	c.watch.Reset(watchAfter)
}

// runWatch is the watch, on the timer's goroutine. A timer that fires
// late (after its request was answered) finds the state idle and does
// nothing; one that fires early for the next request only watches sooner.
func (c *h1ServerConn) runWatch() {
	c.watchMu.Lock()
	if c.watchState != watchArmed {
		c.watchMu.Unlock()
		return
	}
	c.watchState = watchRunning
	done := make(chan struct{})
	c.watchDone = done
	c.watchMu.Unlock()
	defer close(done)
	_, err := c.br.Peek(1)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		// EOF or a reset: the client is gone. Bytes (a pipelined request)
		// would stay buffered for the next round.
		c.gone.Store(true)
		c.cancel()
		c.cutFast() // the fast path waits on its endpoint without a context
	}
}

// disarmWatch stops the watch once the request is answered, interrupting
// a read in progress and waiting for it to end.
func (c *h1ServerConn) disarmWatch() {
	c.watchMu.Lock()
	state, done := c.watchState, c.watchDone
	c.watchState, c.watchDone = watchIdle, nil
	c.watchMu.Unlock()
	switch state {
	case watchArmed:
		c.watch.Stop()
	case watchRunning:
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// serve serves cc until it closes, or hands it to the HTTP/2 server. tc is
// the TLS connection over cc whose handshake negotiated HTTP/1.1, or nil
// for plain text.
func (hs *h1Server) serve(cc *clientConn, tc *tls.Conn) {
	s := hs.l.s
	c := &h1ServerConn{srv: hs, cc: cc, nc: cc, remote: cc.RemoteAddr().String()}
	ctx := hs.l.s.p.ctx
	if tc != nil {
		c.nc = tc
		st := tc.ConnectionState()
		c.tls = &st
		if cc.peerURI != "" {
			ctx = context.WithValue(ctx, peerURIKey{}, cc.peerURI)
		}
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	defer func() {
		if c.watch != nil {
			c.watch.Stop()
		}
	}()
	c.lr.R = c.nc
	c.br = bufio.NewReaderSize(&c.lr, h1ServerBuf)
	c.bw = bufio.NewWriterSize(c.nc, h1ServerBuf)
	c.w.c = c
	c.w.header = make(http.Header)
	if !hs.track(c) {
		c.nc.Close()
		return
	}
	handedOff := false
	defer func() {
		if v := recover(); v != nil {
			// A bug costs one connection, not the process.
			s.log.Error("panic serving a connection", "client", c.remote, "panic", v, "stack", string(debug.Stack()))
		}
		hs.untrack(c)
		switch {
		case handedOff:
		case c.linger:
			c.lingerClose()
		default:
			c.nc.Close()
		}
	}()
	for first := true; ; first = false {
		if !c.waitRequest() {
			return
		}
		if first && tc == nil {
			if b, err := c.br.Peek(4); err == nil && string(b) == "PRI " {
				hs.untrack(c)
				handedOff = true
				hs.l.serveH2(cc, c.br)
				return
			}
		}
		if !c.serveRequest() {
			return
		}
		c.state.Store(h1Idle)
		if hs.draining.Load() {
			return
		}
	}
}

// waitRequest waits for the first byte of the next request within the
// idle timeout and marks the connection active; false when it is done.
// The deadline also bounds the head's arrival: a client that trickles a
// head in is cut as one that sends nothing.
func (c *h1ServerConn) waitRequest() bool {
	if d := c.srv.idle; d > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(d))
	}
	c.lr.N = maxHeadBytes
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			return false
		}
	}
	return c.state.CompareAndSwap(h1Idle, h1Active)
}

// serveRequest reads and answers one request; false when the connection
// must close.
func (c *h1ServerConn) serveRequest() bool {
	s := c.srv.l.s
	if pol, up := s.pol.Load(), s.up.Load(); pol.fast && up != nil && up.fast != nil {
		if handled, keep := c.serveFast(s, pol, up); handled {
			return keep
		}
	}
	r, err := http.ReadRequest(c.br)
	if err != nil {
		var ne net.Error
		switch {
		case c.lr.N <= 0:
			c.reject("431 Request Header Fields Too Large")
		case errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		default:
			c.reject("400 Bad Request")
		}
		return false
	}
	c.lr.N = 1<<63 - 1
	if r.ProtoMajor != 1 {
		c.reject("505 HTTP Version Not Supported")
		return false
	}
	if msg := checkRequest(r); msg != "" {
		c.reject("400 Bad Request: " + msg)
		return false
	}
	r.RemoteAddr = c.remote
	r.TLS = c.tls
	w := &c.w
	w.reset(r)
	if ex := r.Header["Expect"]; len(ex) > 0 {
		switch {
		case len(ex) == 1 && strings.EqualFold(ex[0], "100-continue"):
			if r.ProtoAtLeast(1, 1) && r.ContentLength != 0 {
				r.Body = &continueBody{ReadCloser: r.Body, w: w}
			}
		default:
			w.closeAfter = true
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			c.linger = r.Body != http.NoBody
			return false
		}
	}
	// An idle connection has no deadline while it is served: the policy's
	// timeouts bound the exchange.
	_ = c.nc.SetReadDeadline(time.Time{})
	watched := r.Body == http.NoBody
	if watched {
		c.armWatch()
	}
	ok := c.handle(s, w, r)
	if watched {
		c.disarmWatch()
	}
	gone := c.gone.Load()
	if !ok || gone && !w.wroteHeader || !w.finish() {
		return false
	}
	if gone {
		// The client closed its side while waiting, but an answer came
		// first: it is out (a half-closed client still reads it), and
		// nothing more comes.
		return false
	}
	if w.closeAfter {
		// The answer says the connection closes; what the client still
		// sends of its body is drained, not reset.
		c.linger = r.Body != http.NoBody
		return false
	}
	return c.discardBody(r)
}

// handle runs the service's ServeHTTP; false when the handler aborted
// the response (the connection is cut, the client sees it truncated).
func (c *h1ServerConn) handle(s *service, w *h1Writer, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.log.Error("panic serving a request", "client", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
			ok = false
		}
	}()
	s.handle(c.ctx, w, r)
	return true
}

// discardBody reads what the handler left of the request body, up to
// maxPostHandlerDiscard; false when more is left (the connection closes).
func (c *h1ServerConn) discardBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	if cb, ok := r.Body.(*continueBody); ok && !cb.sent {
		return false // the client waits for 100 Continue: it sent no body
	}
	_, err := io.CopyN(io.Discard, r.Body, maxPostHandlerDiscard)
	if err != io.EOF {
		c.linger = true
		return false
	}
	return r.Body.Close() == nil
}

// lingerTime bounds how long a connection closed with client bytes unread
// stays half-closed, its input dropped, so that the client reads the
// answer rather than a reset (net/http waits as long).
const lingerTime = 500 * time.Millisecond

// lingerClose closes the write side, drops what the client still sends
// for up to lingerTime, then closes.
func (c *h1ServerConn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil &&
		c.nc.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
		// readerOnly: the drained bytes go through the connection's Read,
		// which counts them, not through the TCP connection's WriteTo.
		_, _ = io.Copy(io.Discard, readerOnly{c.nc})
	}
	c.nc.Close()
}

// reject answers a request that could not be read, and the connection
// closes, lingering: the rest of the request is unread.
func (c *h1ServerConn) reject(status string) {
	c.linger = true
	_, _ = c.bw.WriteString("HTTP/1.1 " + status +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + status)
	_ = c.bw.Flush()
}

// checkRequest makes the checks http.Server makes of a parsed request
// head; it returns the 400 text of the first that fails. ReadRequest has
// moved the first Host field to r.Host and dropped the others; only that
// one is sent on.
func checkRequest(r *http.Request) string {
	switch {
	case r.ProtoAtLeast(1, 1) && r.Host == "" && r.Method != http.MethodConnect:
		return "missing required Host header"
	case r.Host != "" && !httpguts.ValidHostHeader(r.Host):
		return "malformed Host header"
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return "invalid header name"
		}
		if h1wire.FramingTwin(k) {
			// As the gateway's framing guard: a server that maps '_' to
			// '-' would frame the request by it.
			return "framing header name spelled with '_'"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return "invalid header value"
			}
		}
	}
	return ""
}

// track registers a connection for draining; false once draining.
func (hs *h1Server) track(c *h1ServerConn) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.draining.Load() {
		return false
	}
	hs.conns[c] = struct{}{}
	return true
}

func (hs *h1Server) untrack(c *h1ServerConn) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if _, ok := hs.conns[c]; !ok {
		return
	}
	delete(hs.conns, c)
	if len(hs.conns) == 0 && hs.empty != nil {
		close(hs.empty)
		hs.empty = nil
	}
}

// shutdown closes idle connections now and the others after their
// request; when ctx ends first, it cuts them and returns ctx's error.
func (hs *h1Server) shutdown(ctx context.Context) error {
	hs.mu.Lock()
	hs.draining.Store(true)
	for c := range hs.conns {
		if c.state.CompareAndSwap(h1Idle, h1Closed) {
			_ = c.nc.Close()
		}
	}
	var empty chan struct{}
	if len(hs.conns) > 0 {
		empty = make(chan struct{})
		hs.empty = empty
	}
	hs.mu.Unlock()
	if empty == nil {
		return nil
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		hs.mu.Lock()
		for c := range hs.conns {
			c.cancel()
			c.cutFast()
			_ = c.nc.Close()
		}
		hs.mu.Unlock()
		return ctx.Err()
	}
}

// continueBody sends "100 Continue" before the first read of a body whose
// client asked for it, as http.Server does.
type continueBody struct {
	io.ReadCloser
	w    *h1Writer
	sent bool
}

func (b *continueBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		if !b.w.wroteHeader {
			bw := b.w.c.bw
			_, _ = bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := bw.Flush(); err != nil {
				return 0, err
			}
		}
	}
	return b.ReadCloser.Read(p)
}

// h1Writer is the ResponseWriter of an h1ServerConn, reused for each of
// its requests. It frames the body by the Content-Length the handler set,
// else chunked (HTTP/1.1) or by closing the connection (HTTP/1.0), and
// sends trailers (declared in Trailer or set with http.TrailerPrefix)
// after a chunked body.
type h1Writer struct {
	c      *h1ServerConn
	header http.Header
	req    *http.Request

	wroteHeader bool
	status      int
	noBody      bool  // HEAD, 1xx, 204, 304
	chunked     bool  // the body is sent in chunks
	length      int64 // declared Content-Length, -1 without
	written     int64
	closeAfter  bool // the connection closes after this response
	failed      bool // a write to the client failed
	num         [20]byte
	date        h1wire.Date
}

// reset prepares the writer for request r.
func (w *h1Writer) reset(r *http.Request) {
	clear(w.header)
	*w = h1Writer{c: w.c, header: w.header, req: r, length: -1,
		closeAfter: r.Close, date: w.date}
}

func (w *h1Writer) Header() http.Header { return w.header }

// WriteHeader writes the status line and the header.
func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	bw := w.c.bw
	h := w.header
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.statusLine(code)
		w.writeFields(h, false)
		_, _ = bw.WriteString("\r\n")
		return
	}
	w.wroteHeader, w.status = true, code
	w.noBody = w.req.Method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
	trailers := len(h["Trailer"]) > 0
	if !trailers {
		for k := range h {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				trailers = true
				break
			}
		}
	}
	if cl := h["Content-Length"]; len(cl) == 1 && !(trailers && w.req.ProtoAtLeast(1, 1)) {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	if w.length < 0 {
		delete(h, "Content-Length")
	}
	switch {
	case w.noBody:
	case w.length >= 0:
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the end of the connection ends the body
	}
	if !w.closeAfter && w.c.srv.draining.Load() {
		w.closeAfter = true
	}
	w.statusLine(code)
	w.writeFields(h, !w.chunked)
	if _, ok := h["Date"]; !ok {
		w.writeDate()
	}
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter && w.req.ProtoAtLeast(1, 1):
		_, _ = bw.WriteString("Connection: close\r\n")
	case !w.closeAfter && !w.req.ProtoAtLeast(1, 1):
		_, _ = bw.WriteString("Connection: keep-alive\r\n")
	}
	_, _ = bw.WriteString("\r\n")
}

// writeFields writes the header fields but those this writer frames
// itself and the trailers (and, when noTrailer, the Trailer field).
func (w *h1Writer) writeFields(h http.Header, noTrailer bool) {
	bw := w.c.bw
	for k, vv := range h {
		switch k {
		case "Transfer-Encoding", "Connection":
			continue
		case "Trailer":
			if noTrailer {
				continue
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			writeValue(bw, v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}

// writeValue writes a field value with CR and LF turned into spaces, as
// net/http does, so that no value can start a field of its own.
func writeValue(bw *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n") {
		_, _ = bw.WriteString(v)
		return
	}
	_, _ = bw.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
}

func (w *h1Writer) statusLine(code int) { h1wire.WriteStatusLine(w.c.bw, false, code) }

// writeDate writes a Date field, formatted once a second.
func (w *h1Writer) writeDate() { w.date.WriteField(w.c.bw) }

// Write writes body bytes, framed as WriteHeader decided.
func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, net.ErrClosed
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	var short bool
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		p, short = p[:w.length-w.written], true
	}
	if len(p) == 0 {
		if short {
			return 0, http.ErrContentLength
		}
		return 0, nil
	}
	bw := w.c.bw
	if w.chunked {
		_, _ = bw.Write(strconv.AppendInt(w.num[:0], int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.failed = true
		return n, err
	}
	if short {
		return n, http.ErrContentLength
	}
	return n, nil
}

// Flush sends what is buffered to the client (http.Flusher).
func (w *h1Writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.c.bw.Flush(); err != nil {
		w.failed = true
	}
}

// finish ends the response: the last chunk and the trailers, then a
// flush. False when the connection cannot serve on: a write failed, or
// the body is shorter than its Content-Length.
func (w *h1Writer) finish() bool { return w.end(true) }

// end is finish, the flush left to the caller unless flush is set.
func (w *h1Writer) end(flush bool) bool {
	if !w.wroteHeader {
		if w.length < 0 {
			// Nothing written: an empty body, framed by length.
			w.header["Content-Length"] = []string{"0"}
		}
		w.WriteHeader(http.StatusOK)
	}
	bw := w.c.bw
	if w.chunked && !w.failed {
		_, _ = bw.WriteString("0\r\n")
		for _, list := range w.header["Trailer"] {
			for k := range strings.SplitSeq(list, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				for _, v := range w.header[k] {
					w.trailer(k, v)
				}
			}
		}
		for k, vv := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vv {
					w.trailer(name, v)
				}
			}
		}
		_, _ = bw.WriteString("\r\n")
	}
	if flush && bw.Flush() != nil {
		w.failed = true
	}
	return !w.failed && (w.length < 0 || w.noBody || w.written == w.length)
}

// trailer writes one trailer field, unless its name is one no trailer
// may carry.
func (w *h1Writer) trailer(name, value string) {
	if !httpguts.ValidTrailerHeader(name) {
		return
	}
	bw := w.c.bw
	_, _ = bw.WriteString(name)
	_, _ = bw.WriteString(": ")
	writeValue(bw, value)
	_, _ = bw.WriteString("\r\n")
}
