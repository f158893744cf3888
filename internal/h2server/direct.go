package h2server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// StreamHandler is implemented by a Server's Handler that can serve
// requests from their decoded header fields, without the http.Request,
// header map and context ServeHTTP takes (about fifteen allocations a
// request). The server offers it each request but CONNECT and those that
// expect 100-continue, with or without a body. A handler that declines
// one (returns false, having written nothing and read nothing of the
// body) gets it through ServeHTTP at once, on the same goroutine.
type StreamHandler interface {
	http.Handler
	ServeStream(r *Request) bool
}

// Request is a request as ServeStream serves it: its fields, its body,
// and the methods that answer it. It is valid until ServeStream returns,
// and only on ServeStream's goroutine, but for Body: another goroutine
// may read (and close) it while ServeStream answers, full duplex, as
// ServeHTTP's bodies. The checks ServeHTTP's requests pass (RFC 9113
// §8.2–8.3) have passed.
type Request struct {
	Method, Scheme, Path string
	// Authority is :authority, or the Host field of a request without
	// it.
	Authority string
	// Fields are the regular header fields in the order received, names
	// in lower case; no connection-specific field, te only "trailers".
	// Host is not among them (it is Authority), and cookie fields are
	// joined into one (§8.2.3), as for HTTP/1.
	Fields     []hpack.HeaderField
	RemoteAddr string
	TLS        *tls.ConnectionState
	// Body reads the request's DATA, nil when the headers ended the
	// stream; reading it gives flow-control credit back, as the body of
	// ServeHTTP's requests does, and fails once the stream is reset or
	// its length differs from content-length. Trailers are dropped:
	// the http.Request of a declined request has those it declared.
	// Close drops what is not read, and ends a Read waiting on another
	// goroutine; SetBodyIdle bounds its waits.
	// ContentLength is the body's content-length: -1 when a body comes
	// without one, 0 when there is no body.
	Body          io.ReadCloser
	ContentLength int64

	s        *stream
	hd       head // for the http.Request of a request declined
	trailers []hpack.HeaderField
}

// ConnContext is the connection's context, with what Server.ConnContext
// put in it. It ends with the connection, not with the stream: a reset
// stream is seen by Watch.
func (r *Request) ConnContext() context.Context { return r.s.c.ctx }

// Watch asks for c to be closed as soon as the stream is reset (by the
// client, or because the connection ends), so that a handler blocked on
// c returns, whatever deadlines it sets meanwhile; Watch(nil) stops. It
// reports false, and watches nothing, when the stream is already reset:
// after Watch(nil) reported true, c was not closed and is not going to be.
func (r *Request) Watch(c io.Closer) bool {
	s := r.s
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.reset {
		s.cut = nil
		return false
	}
	s.cut = c
	return true
}

// WriteHead queues the response's HEADERS: status (200–999) and fields,
// names in lower case (fields HTTP/2 forbids, and invalid ones, are
// dropped; a date is added when there is none). length is the body's
// declared size (-1: unknown): Write stops there. end says there is no
// body, and ends the response. It is sent with the connection's next
// write (Flush, Write's, or the end of ServeStream).
func (r *Request) WriteHead(status int, fields []hpack.HeaderField, length int64, end bool) error {
	w := &r.s.w
	if w.wroteHeader || status < 200 || status > 999 {
		return errHeadWritten
	}
	w.wroteHeader, w.status, w.declared = true, status, length
	w.noBody = w.isHead || status == http.StatusNoContent || status == http.StatusNotModified
	hasDate := false
	for i := range fields {
		f := &fields[i]
		if f.Name == "date" {
			hasDate = true
		}
		if !validResponseField(f.Name, f.Value) {
			fields = cleanFields(fields)
			break
		}
	}
	if !hasDate {
		fields = append(fields, hpack.HeaderField{Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)})
	}
	return w.queueHeaders(fields, end)
}

// validResponseField: a lower-case token name HTTP/2 allows, and a valid
// value.
func validResponseField(name, value string) bool {
	return validFieldName(name) && !connectionSpecific(name) && httpguts.ValidHeaderFieldValue(value)
}

// cleanFields returns fields less those validResponseField refuses, names
// lower-cased first.
func cleanFields(fields []hpack.HeaderField) []hpack.HeaderField {
	out := make([]hpack.HeaderField, 0, len(fields))
	for _, f := range fields {
		f.Name = strings.ToLower(f.Name)
		if validResponseField(f.Name, f.Value) {
			out = append(out, f)
		}
	}
	return out
}

// SetBodyIdle bounds each wait of Body's reads for DATA to d (0: no
// bound, the default): a read that waits longer fails with ErrBodyIdle.
func (r *Request) SetBodyIdle(d time.Duration) { r.s.body.idle = d }

// Write queues body bytes as DATA frames, as ResponseWriter.Write does.
func (r *Request) Write(p []byte) (int, error) { return r.s.w.Write(p) }

// Flush writes what is queued, as ResponseWriter's Flush does.
func (r *Request) Flush() error { return r.s.w.FlushError() }

var errHeadWritten = errors.New("h2server: response head already written, or status out of range")

// SetTrailers sets fields sent after the body, when ServeStream returns
// (names in lower case; invalid ones are dropped).
func (r *Request) SetTrailers(fields []hpack.HeaderField) {
	r.trailers = r.trailers[:0]
	for _, f := range fields {
		r.trailers = appendField(r.trailers, f.Name, f.Value)
	}
}

// serveDirect offers s to the StreamHandler; false: ServeHTTP must serve
// it, with the http.Request built now.
func (c *conn) serveDirect(s *stream) bool {
	if c.direct.ServeStream(s.direct) {
		return true
	}
	if s.w.wroteHeader {
		panic("h2server: ServeStream wrote a response and returned false")
	}
	c.mu.Lock()
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	if s.reset {
		s.cancel()
	}
	c.mu.Unlock()
	s.req = c.request(s, s.direct.hd, s.direct.Fields, s.direct.Body == nil)
	return false
}
