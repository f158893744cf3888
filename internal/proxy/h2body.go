package proxy

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/h2server"
)

// Request bodies on the direct path. A POST, PUT or PATCH with a body
// goes this way unless it declares trailers (ServeHTTP forwards those)
// or says content-length: 0 with DATA to come (net/http's client sends
// such a body chunked). A body of known length up to directBodyMax is
// read whole before the target is picked and leaves with the head in one
// write, as a bodiless request does; a longer one, or one of unknown
// length (sent chunked), is streamed after the head on a goroutine of
// its own while the answer is read and relayed, as on the HTTP/1 fast
// path (duplex.go). A request with a body is never sent twice: only a
// connection found closed before anything was written (notIdle) is
// replaced. The client's body reads wait for DATA at most the service's
// idle timeout each.

// directBodyMax is the largest body sent with its head.
const directBodyMax = 16 << 10

// directBody reports whether the direct path takes r's body.
func directBody(r *h2server.Request) bool {
	if r.Body == nil {
		return true
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return false // net/http's client probes the bodies of other methods
	}
	if r.ContentLength == 0 {
		return false
	}
	for i := range r.Fields {
		if h1wire.ClassifyField(r.Fields[i].Name) == h1wire.FieldTrailer {
			return false
		}
	}
	return true
}

// readSmallBody reads a body of known length up to directBodyMax after
// the head in d.head, for the one write; false when the body is to be
// streamed. An error is the client's: its stream was reset, or stalled
// (SetBodyIdle), or its body is not its content-length.
// read counts the body bytes read, also when it fails.
func (d *direct) readSmallBody(r *h2server.Request) (small bool, read int64, err error) {
	if r.Body == nil || r.ContentLength < 0 || r.ContentLength > directBodyMax {
		return false, 0, nil
	}
	n := len(d.head)
	d.head = slices.Grow(d.head, int(r.ContentLength))[:n+int(r.ContentLength)]
	m, err := io.ReadFull(r.Body, d.head[n:])
	if err != nil {
		d.head = d.head[:n]
		return false, int64(m), err
	}
	d.buffered = true
	return true, int64(m), nil
}

// copyBody streams r's body to uc after its head: chunked when its
// length is unknown, each read going out in one write with its chunk
// framing. It returns the payload bytes, the client's read error and
// the target's write error.
func (d *direct) copyBody(r *h2server.Request, uc *upConn) (n int64, rerr, werr error) {
	bp := d.Bufs.Get().(*[]byte)
	defer d.Bufs.Put(bp)
	buf := *bp
	chunked := r.ContentLength < 0
	const pre = 10 // room for a chunk-size line: 8 hex digits and CRLF
	for {
		lo, hi := 0, len(buf)
		if chunked {
			lo, hi = pre, len(buf)-2
		}
		m, err := r.Body.Read(buf[lo:hi])
		if m > 0 {
			n += int64(m)
			out := buf[lo : lo+m]
			if chunked {
				size := strconv.AppendUint(buf[:0:pre], uint64(m), 16)
				start := pre - len(size) - 2
				copy(buf[start:], size)
				buf[pre-2], buf[pre-1] = '\r', '\n'
				out = append(buf[start:lo+m], '\r', '\n')
			}
			if _, werr = uc.w.Write(out); werr != nil {
				return n, nil, werr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err, nil
		}
	}
	if chunked {
		_, werr = uc.w.Write([]byte("0\r\n\r\n"))
	}
	return n, nil, werr
}

// sendBody is copyBody on the body's goroutine (bodySender). A body
// longer or shorter than its content-length, or a reset stream, is the
// client's read error: h2server resets the stream.
func (d *direct) sendBody() (n int64, bad, rerr, werr error) {
	n, rerr, werr = d.copyBody(d.r, d.pump.uc)
	return n, nil, rerr, werr
}

// cutBody makes the body's read fail (bodySender): h2server's Close
// wakes a read waiting for DATA.
func (d *direct) cutBody() { _ = d.r.Body.Close() }

// settleBody ends the body's goroutine, if one runs (bodyPump.settle),
// and takes its outcome.
func (d *direct) settleBody() bodyEnd {
	if !d.pump.running {
		return bodyWhole
	}
	end := d.pump.settle()
	d.st.rec.BytesReceived = d.pump.n
	return end
}

// exchangeStreamed sends the head, then the body on its own goroutine
// while this one waits for the answer and relays it (duplex.go).
func (d *direct) exchangeStreamed(uc *upConn, sent time.Time) (ge *genError, retry bool) {
	e, r, rt := d.ps.e, d.r, &d.fwd
	rec := &d.st.rec
	uc.w.Now = sent
	_, err := uc.w.Write(d.head)
	uc.w.Now = time.Time{}
	if err != nil {
		_ = uc.c.Close()
		if !r.Watch(nil) {
			return errClientGone, false
		}
		e.log.Debug("target request failed", "target", uc.pool.addr, "targetGroup", rt.g.tg.id, "err", err)
		return classifyTargetError(err), false
	}
	d.ends, err = d.pump.sendReadingHead(uc, d, e.log, &d.resp, d.ends)
	rec.ResponseFromTarget = time.Since(sent)
	if err != nil {
		_ = uc.c.Close()
		// Reset by the client, or a body longer or shorter than its
		// content-length: the target has a request cut short.
		fault := d.settleBody() == bodyClientFault
		if !r.Watch(nil) || fault {
			return errClientGone, false
		}
		e.log.Debug("target request failed", "target", uc.pool.addr, "targetGroup", rt.g.tg.id, "err", err)
		return classifyTargetError(err), false
	}
	rec.Status = d.resp.Status
	ge = d.relayResponse(e, r, rec, uc)
	d.settleBody() // relayResponse did, unless it failed
	return ge, false
}

// appendBodyFraming appends the framing field of r's body, if any, to the
// head toward the target.
func appendBodyFraming(b []byte, r *h2server.Request) []byte {
	switch {
	case r.Body != nil && r.ContentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		return append(b, "\r\n"...)
	case r.Body != nil:
		return append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// As net/http's client: many servers expect a length with these.
		b = append(b, "Content-Length: 0\r\n"...)
	}
	return b
}
