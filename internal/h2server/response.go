package h2server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// responseWriter is a stream's http.ResponseWriter. Headers go out with
// the first body bytes, a Flush, or the handler's return; body bytes are
// queued as DATA frames as they are written (within the flow-control
// windows) and leave with the connection's next write.
type responseWriter struct {
	s           *stream
	header      http.Header
	status      int
	wroteHeader bool // the final status is set
	sentHeader  bool // its HEADERS frame is queued
	isHead      bool
	noBody      bool  // HEAD, 204, 304: body bytes are dropped
	declared    int64 // Content-Length, -1: none
	written     int64
	// endOff is the offset in the queue of the flags byte of the stream's
	// last DATA frame, valid while endGen is the queue's gen: END_STREAM
	// is set there rather than sent in a frame of its own.
	endOff int
	endGen uint64
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// WriteHeader implements http.ResponseWriter. 1xx codes are sent at once
// as informational responses; 101, which HTTP/2 does not have, panics
// (the stream is reset).
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code == http.StatusSwitchingProtocols {
		panic("h2server: 101 Switching Protocols does not exist in HTTP/2")
	}
	if code < 200 {
		w.writeInformational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	w.declared = -1
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	w.noBody = w.isHead || code == http.StatusNoContent || code == http.StatusNotModified
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.isHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if len(p) == 0 {
		return 0, nil
	}
	var short error
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		p = p[:w.declared-w.written]
		short = http.ErrContentLength
	}
	n, err := w.writeData(p)
	if err == nil {
		err = short
	}
	return n, err
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError sends the headers if still held and writes the queue.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.s.c
	if !w.sentHeader {
		if err := w.sendHeaders(false); err != nil {
			return err
		}
	}
	c.flush()
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.s.reset {
		return w.s.resetErr
	}
	return c.writeFailed
}

func (w *responseWriter) writeData(p []byte) (int, error) {
	c, s := w.s.c, w.s
	if !w.sentHeader {
		if err := w.sendHeaders(false); err != nil {
			return 0, err
		}
	}
	done := 0
	c.mu.Lock()
	for done < len(p) {
		n, err := c.waitRoom(s, len(p)-done)
		if err != nil {
			c.mu.Unlock()
			return done, err
		}
		start := len(c.out.buf)
		c.out.buf = appendFrameHeader(c.out.buf, n, frameData, 0, s.id)
		c.out.buf = append(c.out.buf, p[done:done+n]...)
		w.endOff, w.endGen = start+4, c.out.gen
		s.sendWindow -= int64(n)
		c.sendWindow -= int64(n)
		done += n
		w.written += int64(n)
	}
	big := len(c.out.buf) >= 64<<10
	c.mu.Unlock()
	if big {
		c.flush()
	}
	return done, nil
}

// finish ends the response when the handler returns.
func (w *responseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c, s := w.s.c, w.s
	trailers := w.trailers()
	if s.direct != nil {
		trailers = append(trailers, s.direct.trailers...)
	}
	if !w.noBody && w.declared >= 0 && w.written < w.declared {
		return // short of its Content-Length: handlerDone resets the stream
	}
	if !w.sentHeader {
		if err := w.sendHeaders(len(trailers) == 0); err != nil || len(trailers) == 0 {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.reset || s.localDone {
		return
	}
	if len(trailers) > 0 {
		if _, err := c.waitRoom(s, 0); err != nil {
			return
		}
		c.appendHeaders(s.id, trailers, true)
	} else if w.endGen == c.out.gen && w.endOff > 0 {
		c.out.buf[w.endOff] |= flagEndStream
	} else {
		c.out.buf = appendFrameHeader(c.out.buf, 0, frameData, flagEndStream, s.id)
	}
	c.localEnd(s)
}

// localEnd marks the response ended; mu held.
func (c *conn) localEnd(s *stream) {
	s.localDone = true
	if s.remoteDone {
		delete(c.streams, s.id)
	}
}

// trailers are the fields to send after the body: those the "Trailer"
// header announced, and those set with http.TrailerPrefix.
func (w *responseWriter) trailers() []hpack.HeaderField {
	var out []hpack.HeaderField
	for _, v := range w.header["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			k := http.CanonicalHeaderKey(strings.TrimSpace(name))
			for _, val := range w.header[k] {
				out = appendField(out, k, val)
			}
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				out = appendField(out, name, v)
			}
		}
	}
	return out
}

// declaredTrailer reports whether the "Trailer" header names k: its
// value goes in the trailers, not the headers.
func (w *responseWriter) declaredTrailer(k string) bool {
	for _, v := range w.header["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(name)) == k {
				return true
			}
		}
	}
	return false
}

// appendField appends a field with its name lower-cased, unless HTTP/2
// forbids it or it is not valid.
func appendField(out []hpack.HeaderField, name, value string) []hpack.HeaderField {
	name = lowerName(name)
	if name == "" || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) || connectionSpecific(name) {
		return out
	}
	return append(out, hpack.HeaderField{Name: name, Value: value})
}

// sendHeaders queues the response's HEADERS.
func (w *responseWriter) sendHeaders(endStream bool) error {
	fields := make([]hpack.HeaderField, 0, len(w.header)+1)
	hasDate := false
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) || w.declaredTrailer(k) {
			continue
		}
		hasDate = hasDate || k == "Date"
		for _, v := range vv {
			fields = appendField(fields, k, v)
		}
	}
	if !hasDate {
		fields = append(fields, hpack.HeaderField{Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)})
	}
	return w.queueHeaders(fields, endStream)
}

// queueHeaders queues the HEADERS of the final response with fields.
func (w *responseWriter) queueHeaders(fields []hpack.HeaderField, endStream bool) error {
	c, s := w.s.c, w.s
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.waitRoom(s, 0); err != nil {
		return err
	}
	w.sentHeader, s.headersSent = true, true
	c.appendStatusHeaders(s.id, w.status, fields, endStream)
	if endStream {
		c.localEnd(s)
	}
	return nil
}

// writeInformational sends a 1xx response.
func (w *responseWriter) writeInformational(code int) {
	c, s := w.s.c, w.s
	var fields []hpack.HeaderField
	for k, vv := range w.header {
		for _, v := range vv {
			fields = appendField(fields, k, v)
		}
	}
	c.mu.Lock()
	if _, err := c.waitRoom(s, 0); err == nil {
		c.appendStatusHeaders(s.id, code, fields, false)
	}
	c.mu.Unlock()
	c.flush()
}

// writeContinue answers Expect: 100-continue, unless the response has
// begun. The body's reader may be another goroutine than the handler's,
// so only state under mu is looked at.
func (w *responseWriter) writeContinue() {
	c, s := w.s.c, w.s
	c.mu.Lock()
	if !s.headersSent {
		if _, err := c.waitRoom(s, 0); err == nil {
			c.appendStatusHeaders(s.id, http.StatusContinue, nil, false)
		}
	}
	c.mu.Unlock()
	c.flush()
}

// appendStatusHeaders encodes ":status" and fields; mu held.
func (c *conn) appendStatusHeaders(id uint32, status int, fields []hpack.HeaderField, endStream bool) {
	c.encBuf.b = c.encBuf.b[:0]
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	c.encodeFields(id, fields, endStream)
}

// appendHeaders encodes a trailer block; mu held.
func (c *conn) appendHeaders(id uint32, fields []hpack.HeaderField, endStream bool) {
	c.encBuf.b = c.encBuf.b[:0]
	c.encodeFields(id, fields, endStream)
}

func (c *conn) encodeFields(id uint32, fields []hpack.HeaderField, endStream bool) {
	for _, f := range fields {
		_ = c.enc.WriteField(f)
	}
	block := c.encBuf.b
	flags := uint8(0)
	if endStream {
		flags |= flagEndStream
	}
	typ := frameHeaders
	for {
		n := min(len(block), c.peerFrame)
		f := flags
		if n == len(block) {
			f |= flagEndHeaders
		}
		c.out.buf = appendFrameHeader(c.out.buf, n, typ, f, id)
		c.out.buf = append(c.out.buf, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return
		}
		typ, flags = frameContinuation, 0
	}
}

// bytesBuffer is the HPACK encoder's output.
type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) {
	b.b = append(b.b, p...)
	return len(p), nil
}

var statusStrings = func() (s [600]string) {
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusText(code int) string {
	if code < len(statusStrings) {
		return statusStrings[code]
	}
	return strconv.Itoa(code)
}
