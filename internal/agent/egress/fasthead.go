package egress

import (
	"bytes"
	"math/rand/v2"
	"unsafe"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// buildHead appends to out the head the fast path sends to endpoints for
// the request hd, rewritten as rewriteRequest rewrites a net/http
// request: hop-by-hop fields out (those of hopHeaders and those
// Connection names; "te: trailers" kept), x-forwarded-for appended,
// x-forwarded-proto (proto: http, or https from a TLS client) added when
// missing, a W3C traceparent (tracestate dropped with a broken one) and
// an x-request-id added when missing. Host and the other fields keep
// their order and spelling. rec gets the trace and request IDs, which
// alias out.
func (f *fastState) buildHead(out []byte, hd *h1wire.Head, rec *Record, proto string) []byte {
	var (
		tp       []byte // the only traceparent, if there is one
		tps      int
		rid      []byte
		ridSeen  bool
		hasProto bool
	)
	for i := range hd.Fields {
		fd := &hd.Fields[i]
		if hopField(hd, fd) {
			continue // removed before anything is added
		}
		switch {
		case bytes.EqualFold(fd.Name, []byte("traceparent")):
			tp = fd.Value
			tps++
		case bytes.EqualFold(fd.Name, []byte("x-request-id")):
			if !ridSeen {
				rid, ridSeen = fd.Value, true
			}
		case bytes.EqualFold(fd.Name, []byte("x-forwarded-proto")):
			hasProto = true
		}
	}
	newTrace := tps != 1 || !validTraceparent(unsafe.String(unsafe.SliceData(tp), len(tp)))
	newID := len(rid) == 0

	out = append(out, hd.Method...)
	out = append(out, ' ')
	out = append(out, hd.Target...)
	out = append(out, " HTTP/1.1\r\n"...)
	xff := f.xff[:0] // the prior x-forwarded-for values, joined
	tpAt, ridAt := -1, -1
	for i := range hd.Fields {
		fd := &hd.Fields[i]
		if hopField(hd, fd) {
			continue
		}
		if fd.Kind == h1wire.FieldLattice && bytes.EqualFold(fd.Name, []byte("x-forwarded-for")) {
			xff = append(xff, fd.Value...)
			xff = append(xff, ", "...)
			continue
		}
		switch {
		case bytes.EqualFold(fd.Name, []byte("traceparent")):
			if newTrace {
				continue
			}
			tpAt = len(out) + len(fd.Name) + 2
		case newTrace && bytes.EqualFold(fd.Name, []byte("tracestate")):
			continue
		case bytes.EqualFold(fd.Name, []byte("x-request-id")):
			if newID {
				continue
			}
			if ridAt < 0 {
				ridAt = len(out) + len(fd.Name) + 2
			}
		}
		out = append(out, fd.Name...)
		out = append(out, ": "...)
		out = append(out, fd.Value...)
		out = append(out, "\r\n"...)
	}
	if hd.TETrailers {
		out = append(out, "Te: trailers\r\n"...)
	}
	out = append(out, "X-Forwarded-For: "...)
	out = append(out, xff...)
	f.xff = xff
	out = append(out, f.ip...)
	out = append(out, "\r\n"...)
	if !hasProto {
		out = append(out, "X-Forwarded-Proto: "...)
		out = append(out, proto...)
		out = append(out, "\r\n"...)
	}
	if newTrace {
		out = append(out, "Traceparent: "...)
		tpAt = len(out)
		out = appendTraceparent(out)
		out = append(out, "\r\n"...)
	}
	if newID {
		out = append(out, "X-Request-Id: "...)
		ridAt = len(out)
		out = appendRequestID(out)
		out = append(out, "\r\n"...)
	}
	out = append(out, "\r\n"...)
	rec.TraceParent = lineValue(out, tpAt)
	rec.RequestID = lineValue(out, ridAt)
	return out
}

// hopField reports whether a request field stays on this hop: a
// hop-by-hop field, or one Connection names. Host and Content-Length are
// kept whatever Connection says (net/http holds them apart from the
// header map): they route and frame the request.
func hopField(hd *h1wire.Head, fd *h1wire.Field) bool {
	switch fd.Kind {
	case h1wire.FieldConnection, h1wire.FieldTE, h1wire.FieldTransferEncoding, h1wire.FieldTrailer,
		h1wire.FieldHop, h1wire.FieldExpect:
		return true
	case h1wire.FieldHost, h1wire.FieldContentLength:
		return false
	}
	return len(hd.ConnList) > 0 && hd.Listed(fd.Name)
}

// lineValue is the field value starting at out[at], up to its CRLF, as a
// string aliasing out.
func lineValue(out []byte, at int) string {
	v := out[at:]
	v = v[:bytes.IndexByte(v, '\r')]
	return unsafe.String(unsafe.SliceData(v), len(v))
}

// appendTraceparent appends a new traceparent (newTraceparent).
func appendTraceparent(out []byte) []byte {
	var b [55]byte
	copy(b[:], "00-")
	hi, lo := rand.Uint64(), rand.Uint64()
	for hi == 0 && lo == 0 {
		hi = rand.Uint64()
	}
	putHex(b[3:19], hi)
	putHex(b[19:35], lo)
	b[35] = '-'
	span := rand.Uint64()
	for span == 0 {
		span = rand.Uint64()
	}
	putHex(b[36:52], span)
	copy(b[52:], "-01")
	return append(out, b[:]...)
}

// appendRequestID appends a new x-request-id (newRequestID).
func appendRequestID(out []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	var h [32]byte
	putHex(h[:16], hi)
	putHex(h[16:], lo)
	out = append(out, h[0:8]...)
	out = append(out, '-')
	out = append(out, h[8:12]...)
	out = append(out, '-')
	out = append(out, h[12:16]...)
	out = append(out, '-')
	out = append(out, h[16:20]...)
	out = append(out, '-')
	return append(out, h[20:32]...)
}
