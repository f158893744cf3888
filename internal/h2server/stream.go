package h2server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its response. The fields after mu's comment
// are guarded by the connection's mu.
type stream struct {
	c      *conn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request // nil while direct is served
	direct *Request      // for the StreamHandler (&dreq); nil: none
	dreq   Request
	// fieldsBuf holds a direct request's fields when they are few.
	fieldsBuf [8]hpack.HeaderField
	w         responseWriter
	body      requestBody

	// Guarded by c.mu.
	cond        sync.Cond // body bytes arrived, or the stream ended
	remoteDone  bool      // the client ended its side (END_STREAM)
	localDone   bool      // the response ended (END_STREAM sent)
	reset       bool      // RST_STREAM sent or received, or the connection ended
	resetErr    error
	sendWindow  int64
	recvWindow  int32
	recvRefund  int32
	handlerDone bool
	headersSent bool      // the final response's HEADERS are queued
	cut         io.Closer // Request.Watch's: closed when the stream resets
}

var (
	errClientReset = errors.New("h2server: the client reset the stream")
	errStreamReset = errors.New("h2server: stream reset")
)

// startStream registers s and runs its handler.
func (c *conn) startStream(s *stream) {
	c.mu.Lock()
	c.streams[s.id] = s
	c.running++
	s.sendWindow = int64(c.peerWindow)
	if c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Unlock()
	c.wg.Add(1)
	c.srv.workers.run(c, s)
}

func (c *conn) runHandler(s *stream) {
	defer c.wg.Done()
	panicked := true
	defer func() {
		if panicked {
			v := recover()
			if v != http.ErrAbortHandler {
				c.log.Error("panic serving an HTTP/2 request", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
			c.mu.Lock()
			c.resetLocked(s, errInternal)
			c.mu.Unlock()
		}
		c.handlerDone(s)
	}()
	if s.direct != nil && c.serveDirect(s) {
		s.w.finish()
		panicked = false
		return
	}
	c.srv.Handler.ServeHTTP(&s.w, s.req)
	s.w.finish()
	panicked = false
}

// handlerDone accounts for a handler that has returned. A client still
// sending a body it will not need is told to stop (RST_STREAM NO_ERROR,
// §8.1).
func (c *conn) handlerDone(s *stream) {
	c.mu.Lock()
	c.running--
	s.handlerDone = true
	if !s.reset && !s.localDone {
		c.resetLocked(s, errInternal) // a response that could not end
	}
	if !s.reset && !s.remoteDone {
		c.resetLocked(s, errNoError)
	}
	// The body nobody will read gives its bytes back (net/http closes it
	// after the handler too).
	if !s.body.closed {
		s.body.closed = true
		if n := len(s.body.buf) - s.body.r; n > 0 {
			c.refundConnLocked(int32(n))
		}
		s.body.buf, s.body.r = nil, 0
	}
	c.armIdle()
	wake := (c.goingAway || c.goAwayRecv) && c.running == 0 && len(c.streams) == 0
	s.cut = nil
	c.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	// Let the goroutines that are ready to run (other handlers whose
	// answers arrived in the same poll) queue their frames first, so that
	// one write carries them all. With nothing else to run, this returns
	// at once.
	runtime.Gosched()
	c.flush()
	if wake {
		_ = c.nc.SetReadDeadline(time.Now()) // the serve loop returns
	}
}

// endRemote marks the client's side of s ended.
func (c *conn) endRemote(s *stream) {
	c.mu.Lock()
	s.remoteDone = true
	if s.localDone {
		delete(c.streams, s.id)
	}
	s.cond.Broadcast()
	c.mu.Unlock()
}

// resetStream sends RST_STREAM for id (the serve loop's stream errors).
func (c *conn) resetStream(id uint32, code errCode) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		c.resetLocked(s, code)
		return true
	}
	// Bounded like the other answers to the client's frames.
	c.noteReset(id)
	return c.out.appendControl(func(b []byte) []byte {
		return appendUint32(appendFrameHeader(b, 4, frameRSTStream, 0, id), uint32(code))
	})
}

// resetLocked resets s with code, unless it has already ended.
func (c *conn) resetLocked(s *stream, code errCode) {
	if s.reset {
		return
	}
	c.out.appendRST(s.id, code)
	c.noteReset(s.id)
	c.closeStream(s, errStreamReset)
}

// closeStream ends s without sending anything: its handler's reads and
// writes fail from now on and its context is cancelled. Called with mu
// held.
func (c *conn) closeStream(s *stream, err error) {
	if s.reset {
		return
	}
	s.reset, s.resetErr = true, err
	delete(c.streams, s.id)
	s.cond.Broadcast()
	c.cond.Broadcast()
	s.stop()
	if n := len(s.body.buf) - s.body.r; n > 0 {
		// Bytes nobody will read go back to the connection's window.
		c.refundConnLocked(int32(n))
		s.body.buf, s.body.r = nil, 0
	}
}

// abort ends s because the connection ends; mu held.
func (s *stream) abort(err error) {
	if s.reset {
		return
	}
	s.reset, s.resetErr = true, err
	s.cond.Broadcast()
	s.stop()
}

// stop cancels the context of a reset stream and closes what its
// handler watches; mu held.
func (s *stream) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.cut != nil {
		_ = s.cut.Close()
		s.cut = nil
	}
}

// requestBody is a request's body: the serve loop delivers DATA into buf,
// the handler reads it. Guarded by the connection's mu.
type requestBody struct {
	s        *stream
	buf      []byte
	r        int
	eof      bool
	closed   bool  // the handler closed the body: data is dropped
	length   int64 // declared Content-Length, -1: none
	received int64
	trailers []hpack.HeaderField
	declared http.Header // req.Trailer, filled at EOF
	expect   bool        // 100-continue to send before the first wait
	// idle bounds each wait of Read (Server.BodyIdleTimeout,
	// Request.SetBodyIdle; 0: none), set before the handler runs and then
	// only on its goroutine. waits numbers the waits, so that a timer of
	// an earlier one, firing late, is ignored; timedOut is the current
	// wait's, under c.mu.
	idle     time.Duration
	waits    uint64
	timedOut bool
}

// heldBack is the receive window under which a client is taken to be
// held back by this server rather than idle: less than a frame.
const heldBack = defaultFrameSize

// ErrBodyIdle is the error of a body read that waited longer than the
// bound Server.BodyIdleTimeout or Request.SetBodyIdle set.
var ErrBodyIdle = errors.New("h2server: no request body data within the idle timeout")

// deliver adds DATA from the serve loop; it fails when the body exceeds
// the declared Content-Length or ends short of it.
func (b *requestBody) deliver(p []byte, end bool) error {
	c := b.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b.received += int64(len(p))
	if b.length >= 0 && (b.received > b.length || end && b.received != b.length) {
		return errors.New("body length differs from content-length")
	}
	if b.s.reset || b.closed {
		c.refundConnLocked(int32(len(p)))
		return nil
	}
	if b.r == len(b.buf) {
		b.buf, b.r = b.buf[:0], 0
	} else if b.r > 0 && len(b.buf)+len(p) > cap(b.buf) {
		// Compact rather than grow past what is unread.
		n := copy(b.buf, b.buf[b.r:])
		b.buf, b.r = b.buf[:n], 0
	}
	b.buf = append(b.buf, p...)
	b.eof = b.eof || end
	b.s.cond.Broadcast()
	return nil
}

// setTrailers takes the request's trailers, which end the body.
func (b *requestBody) setTrailers(fields []hpack.HeaderField) error {
	c := b.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.length >= 0 && b.received != b.length {
		return errors.New("body length differs from content-length")
	}
	for _, f := range fields {
		if f.IsPseudo() {
			return errors.New("pseudo-header in trailers")
		}
		if !validFieldName(f.Name) || connectionSpecific(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
			return errors.New("invalid trailer field")
		}
	}
	b.trailers = append(b.trailers[:0], fields...)
	b.eof = true
	b.s.cond.Broadcast()
	return nil
}

// Read is the handler's read of the body.
func (b *requestBody) Read(p []byte) (int, error) {
	c := b.s.c
	c.mu.Lock()
	var timer *time.Timer
	for b.r == len(b.buf) && !b.eof && !b.s.reset && !b.closed {
		if b.expect {
			b.expect = false
			c.mu.Unlock()
			b.s.w.writeContinue()
			c.mu.Lock()
			continue
		}
		if b.idle > 0 && timer == nil {
			b.waits++
			b.timedOut = false
			wait, idle := b.waits, b.idle
			timer = time.AfterFunc(idle, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				switch {
				case b.waits != wait:
				case c.recvWindow < heldBack || b.s.recvWindow < heldBack:
					// The client cannot send: this server's windows hold
					// it back (other streams' unread data), which is not
					// the client's idling.
					timer.Reset(idle)
				default:
					b.timedOut = true
					b.s.cond.Broadcast()
				}
			})
		}
		if b.timedOut {
			b.timedOut = false
			c.mu.Unlock()
			timer.Stop()
			return 0, ErrBodyIdle
		}
		b.s.cond.Wait()
	}
	if timer != nil {
		b.waits++ // a late firing is not this wait's
		b.timedOut = false
		timer.Stop()
	}
	switch {
	case b.closed:
		c.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	case b.r < len(b.buf):
		n := copy(p, b.buf[b.r:])
		b.r += n
		c.refundConnLocked(int32(n))
		c.refundStreamLocked(b.s, int32(n))
		c.mu.Unlock()
		c.flush()
		return n, nil
	case b.s.reset:
		c.mu.Unlock()
		return 0, b.s.resetErr
	}
	// The end: trailers the request declared get their values.
	for _, f := range b.trailers {
		k := http.CanonicalHeaderKey(f.Name)
		if _, ok := b.declared[k]; ok {
			b.declared[k] = append(b.declared[k], f.Value)
		}
	}
	b.trailers = nil
	c.mu.Unlock()
	return 0, io.EOF
}

// Close drops what the handler will not read. A Read waiting for DATA
// on another goroutine returns http.ErrBodyReadAfterClose.
func (b *requestBody) Close() error {
	c := b.s.c
	c.mu.Lock()
	if !b.closed {
		b.closed = true
		if n := len(b.buf) - b.r; n > 0 {
			c.refundConnLocked(int32(n))
		}
		b.buf, b.r = nil, 0
		b.s.cond.Broadcast()
	}
	c.mu.Unlock()
	return nil
}

// refundStreamLocked gives consumed bytes back to a stream's window, in
// updates of at least a quarter of it.
func (c *conn) refundStreamLocked(s *stream, n int32) {
	if s.remoteDone || s.reset {
		return
	}
	s.recvRefund += n
	if s.recvRefund >= streamRecvWindow/4 {
		c.out.appendWindowUpdate(s.id, uint32(s.recvRefund))
		s.recvWindow += s.recvRefund
		s.recvRefund = 0
	}
}
