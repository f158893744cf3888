package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// forward sends the current request to rt.tgt over a pooled connection
// and relays the response, as forward.go does on the net/http path: the
// same headers are removed and added, the path sent is the normalised
// one. A request without a body whose reused connection fails before any
// byte of the response arrives is sent again once on a new connection if
// its method is idempotent (the target may have closed the idle
// connection as the request went out; another method might have been
// carried out, as Go's client and nginx also assume).
func (h *h1conn) forward(rt *routed, path string) *genError {
	e := h.ps.e
	rec := &h.st.rec
	p := rt.tgt.pool
	if p == nil {
		return errTargetConnect // not an HTTP1 group over HTTP; route prevents it
	}
	uc := p.get(e.at(rec.Start))
	reused := uc != nil
	sent := time.Now()
	rec.RequestToTarget = sent.Sub(rec.Start)
	for {
		if uc == nil {
			var err error
			if uc, err = p.dial(); err != nil {
				rec.ResponseFromTarget = time.Since(sent)
				e.log.Debug("target request failed", "target", p.addr, "targetGroup", rt.g.tg.id, "err", err)
				return classifyDialError(err)
			}
		}
		ge, retry := h.exchange(rt, path, uc, reused, sent)
		if !retry {
			return ge
		}
		_ = uc.c.Close()
		uc, reused = nil, false
	}
}

func classifyDialError(err error) *genError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTargetTimeout
	}
	return errTargetConnect
}

// exchange sends the request on uc and relays the response. retry asks
// for the request to be sent again on a new connection (uc is then
// closed by the caller).
func (h *h1conn) exchange(rt *routed, path string, uc *upConn, reused bool, sent time.Time) (ge *genError, retry bool) {
	e := h.ps.e
	rec := &h.st.rec
	canRetry := reused && h.body == bodyNone && idempotent(rec.Method)
	w := h.up
	uc.w.d = uc.pool.up.idle
	w.Reset(&uc.w)
	h.writeRequestHead(w, rt, path)
	if h.body == bodyLength && !h.expect && int64(h.in.buffered()) >= h.remain {
		// A small body that has arrived goes out with the head.
		n := int(h.remain)
		_, _ = w.Write(h.in.b[h.in.r : h.in.r+n])
		h.in.r += n
		rec.BytesReceived = h.remain
		h.unread = false
	}
	uc.w.now = sent
	err := w.Flush()
	uc.w.now = time.Time{}
	if err != nil {
		if canRetry {
			return nil, true
		}
		e.log.Debug("target request failed", "target", uc.pool.addr, "err", err)
		_ = uc.c.Close()
		return classifyDialError(err), false
	}
	upBroken := false // the body could not be sent: the target stopped reading
	if h.unread {
		if h.expect {
			_, _ = h.out.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := h.out.Flush(); err != nil {
				_ = uc.c.Close()
				return errClientGone, false
			}
		}
		n, bad, rerr, werr := h.sendBody(w)
		rec.BytesReceived = n
		switch {
		case bad != nil:
			e.log.Debug("request body rejected", "remote", h.remote, "reason", bad.Error())
			_ = uc.c.Close()
			return errBadBody, false
		case rerr != nil:
			_ = uc.c.Close()
			return errClientGone, false
		case werr != nil:
			// The target may have answered early (413, 401...): read on.
			upBroken = true
		default:
			h.unread = false
		}
	}

	// The response head, within ResponseHeaderTimeout of the end of the
	// request; 1xx answers are dropped (the gateway sent its own 100
	// Continue), at most five of them as in Go's client.
	rht := uc.pool.up.rht
	written := sent
	if h.body != bodyNone {
		written = time.Now() // the body may have taken long
	}
	uc.in.armRead(written, rht)
	uc.in.idle = uc.pool.up.idle
	rh := &h.resp
	for n1xx := 0; ; n1xx++ {
		rh.reset()
		var err error
		h.ends, err = uc.in.headLines(h.ends[:0], maxResponseHead, false, nil)
		if err == nil {
			err = rh.parseResponse(uc.in.b[uc.in.r:], h.ends)
		}
		if err != nil {
			_ = uc.c.Close()
			var ne net.Error
			switch {
			case canRetry && uc.in.buffered() == 0 && n1xx == 0 && !(errors.As(err, &ne) && ne.Timeout()):
				return nil, true
			case errors.As(err, &ne) && ne.Timeout():
				ge = errTargetTimeout
			default:
				ge = errTargetConnect
			}
			rec.ResponseFromTarget = time.Since(sent)
			e.log.Debug("target request failed", "target", uc.pool.addr, "targetGroup", rt.g.tg.id, "err", err)
			return ge, false
		}
		if rh.status >= 200 {
			break
		}
		if rh.status == 101 || n1xx == 4 {
			_ = uc.c.Close()
			rec.ResponseFromTarget = time.Since(sent)
			return errTargetConnect, false
		}
		uc.in.r += rh.size
	}
	got := time.Now()
	rec.ResponseFromTarget = got.Sub(sent)
	rec.Status = rh.status
	if upBroken || h.unread {
		h.keep = false
	}
	return h.relayResponse(uc), false
}

// idempotent methods (RFC 9110 §9.2.2) may be sent twice.
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// writeRequestHead writes the head sent to the target: the method, the
// normalised path with the raw query, HTTP/1.1, the client's fields less
// hop-by-hop fields (those of the hopHeaders list and those named in
// Connection) and the gateway's own (latticeHeaders), then the framing
// and the gateway's x-forwarded-* and x-amzn-lattice-* fields.
func (h *h1conn) writeRequestHead(w *bufio.Writer, rt *routed, path string) {
	hd := &h.head
	_, _ = w.Write(hd.method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(path)
	for i, c := range hd.target {
		if c == '?' {
			if i+1 < len(hd.target) {
				_, _ = w.Write(hd.target[i:])
			}
			break
		}
	}
	_, _ = w.WriteString(" HTTP/1.1\r\n")
	for i := range hd.fields {
		f := &hd.fields[i]
		switch f.kind {
		case fConnection, fTE, fTransferEncoding, fTrailer, fHop, fLattice:
			continue
		case fOther, fUserAgent, fExpect, fDate:
			if len(hd.connList) > 0 && hd.listed(f.name) {
				continue
			}
		}
		_, _ = w.Write(f.name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.value)
		_, _ = w.WriteString("\r\n")
	}
	if hd.teTrailers {
		_, _ = w.WriteString("TE: trailers\r\n") // gRPC servers require it
	}
	if h.body == bodyChunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("X-Forwarded-For: ")
	_, _ = w.WriteString(h.ip)
	_, _ = w.WriteString("\r\nX-Forwarded-Port: ")
	_, _ = w.WriteString(rt.pt.portHdr[0])
	_, _ = w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Amzn-Lattice-Network: ")
	_, _ = w.WriteString(rt.t.networkHdr[0])
	_, _ = w.WriteString("\r\nX-Amzn-Lattice-Target: ")
	_, _ = w.WriteString(rt.g.targetHdr[0])
	_, _ = w.WriteString("\r\n\r\n")
}

// sendBody streams the request body to the target: Content-Length bytes,
// or chunks re-framed (extensions dropped, as net/http does) with their
// trailers, under the guard's rules. It returns the payload bytes, a
// framing violation, the client's read error and the target's write
// error.
func (h *h1conn) sendBody(w *bufio.Writer) (n int64, bad, rerr, werr error) {
	if h.body == bodyLength {
		n, rerr, werr = h.copyN(&h.in, w, h.remain, false)
	} else {
		n, bad, rerr, werr = h.copyChunked(&h.in, w, true, true, h.ps.e.cfg.MaxHeaderBytes)
	}
	if bad == nil && rerr == nil && werr == nil {
		werr = w.Flush()
	}
	return n, bad, rerr, werr
}

// respMode is how a response body is delimited.
type respMode uint8

const (
	respNone respMode = iota
	respLength
	respChunked
	respUntilClose
)

// relayResponse writes the response head (hop-by-hop fields removed, the
// framing the client needs) and streams the body; the target connection
// goes back to its pool when the response ended cleanly. The end of the
// response may still be in h.out: serveRequest flushes it once the
// Record is observed, as net/http does after ServeHTTP returns.
func (h *h1conn) relayResponse(uc *upConn) *genError {
	e := h.ps.e
	rec := &h.st.rec
	rh := &h.resp
	upKeep := !rh.connClose && (!rh.http10 || rh.connKeepAlive)
	var mode respMode
	switch {
	case h.isHead || rh.status == 204 || rh.status == 304:
		mode = respNone
	case rh.chunked:
		mode = respChunked
	case rh.length >= 0:
		mode = respLength
	default:
		mode, upKeep = respUntilClose, false
	}
	// HTTP/1.1 clients get bodies of unknown length chunked; HTTP/1.0
	// clients get them delimited by the end of the connection.
	chunkOut := !h.http10 && (mode == respChunked || mode == respUntilClose)
	if h.http10 && (mode == respChunked || mode == respUntilClose) {
		h.keep = false
	}

	w := h.out
	if h.http10 {
		_, _ = w.WriteString("HTTP/1.0 ")
	} else {
		_, _ = w.WriteString("HTTP/1.1 ")
	}
	_, _ = w.Write(strconv.AppendInt(h.num[:0], int64(rh.status), 10))
	if len(rh.reason) > 1 {
		_, _ = w.Write(rh.reason)
	} else {
		// No reason phrase: the status line still needs its space.
		_ = w.WriteByte(' ')
		_, _ = w.WriteString(http.StatusText(rh.status))
	}
	_, _ = w.WriteString("\r\n")
	for i := range rh.fields {
		f := &rh.fields[i]
		switch f.kind {
		case fConnection, fTE, fTransferEncoding, fHop:
			continue
		case fTrailer:
			if !chunkOut {
				continue
			}
		case fContentLength:
			if mode == respChunked {
				continue // Transfer-Encoding wins (RFC 9112 §6.3)
			}
		default:
			if len(rh.connList) > 0 && rh.listed(f.name) {
				continue
			}
		}
		_, _ = w.Write(f.name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.value)
		_, _ = w.WriteString("\r\n")
	}
	if !rh.hasDate {
		h.writeDate()
	}
	if chunkOut {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	h.writeConnection()
	_, _ = w.WriteString("\r\n")
	uc.in.r += rh.size

	var n int64
	var bad, rerr, werr error
	switch mode {
	case respLength:
		n, rerr, werr = h.copyN(&uc.in, w, rh.length, false)
	case respChunked:
		n, bad, rerr, werr = h.copyChunked(&uc.in, w, false, chunkOut, maxResponseHead)
	case respUntilClose:
		n, rerr, werr = h.copyN(&uc.in, w, -1, chunkOut)
		if rerr == nil && werr == nil && chunkOut {
			_, werr = w.WriteString("0\r\n\r\n")
		}
	}
	rec.BytesSent = n
	h.end = time.Now()
	switch {
	case werr != nil:
		_ = uc.c.Close()
		return errClientGone
	case bad != nil || rerr != nil:
		_ = uc.c.Close()
		e.log.Debug("target response broken", "target", uc.pool.addr, "err", errors.Join(bad, rerr))
		return errAbort
	}
	if upKeep && uc.in.buffered() == 0 {
		if len(uc.in.b) > 4*upstreamReadBuf {
			// A large head grew it; idle connections keep the usual size.
			uc.in.b, uc.in.r, uc.in.w = make([]byte, upstreamReadBuf), 0, 0
		}
		uc.pool.put(uc, e.at(h.end))
	} else {
		_ = uc.c.Close()
	}
	return nil
}

// waitMore reads more into src. What dst holds is flushed first, so that
// the peer gets what has arrived before this goroutine blocks (streams,
// gRPC, server-sent events flow without further ado), and src's read
// deadline becomes the body's (rbuf.bodyDeadline).
func (h *h1conn) waitMore(src *rbuf, dst *bufio.Writer, limit int) (rerr, werr error) {
	if dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return nil, err
		}
	}
	src.bodyDeadline()
	return src.fill(limit), nil
}

// copyN relays n payload bytes (n < 0: until src ends) from src to dst,
// as chunks when chunkOut is set. Large transfers bypass the buffers
// with a pooled 32 KiB copy buffer.
func (h *h1conn) copyN(src *rbuf, dst *bufio.Writer, n int64, chunkOut bool) (written int64, rerr, werr error) {
	for n != 0 {
		if src.buffered() == 0 {
			if n < 0 || n > int64(len(src.b)) {
				m, rerr, werr := h.readBig(src, dst, n)
				if werr != nil || rerr != nil {
					if n < 0 && rerr == io.EOF {
						rerr = nil
					}
					return written, rerr, werr
				}
				if werr = h.emit(dst, (*h.big)[:m], chunkOut); werr != nil {
					return written, nil, werr
				}
				written += int64(m)
				if n > 0 {
					n -= int64(m)
				}
				continue
			}
			if rerr, werr = h.waitMore(src, dst, len(src.b)); rerr != nil || werr != nil {
				return written, rerr, werr
			}
		}
		take := src.buffered()
		if n >= 0 && int64(take) > n {
			take = int(n)
		}
		if werr = h.emit(dst, src.b[src.r:src.r+take], chunkOut); werr != nil {
			return written, nil, werr
		}
		src.r += take
		written += int64(take)
		if n > 0 {
			n -= int64(take)
		}
	}
	return written, nil, nil
}

// readBig reads up to n bytes (any when n < 0) of src's connection into
// the pooled copy buffer, src's own buffer being empty.
func (h *h1conn) readBig(src *rbuf, dst *bufio.Writer, n int64) (int, error, error) {
	if dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return 0, nil, err
		}
	}
	src.bodyDeadline()
	if h.big == nil {
		h.big = h.ps.e.buffers.Get().(*[]byte)
	}
	buf := *h.big
	if n >= 0 && int64(len(buf)) > n {
		buf = buf[:n]
	}
	m, err := src.c.Read(buf)
	if m > 0 {
		return m, nil, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err, nil
}

// emit writes p, as one chunk when chunked is set.
func (h *h1conn) emit(dst *bufio.Writer, p []byte, chunked bool) error {
	if chunked {
		_, _ = dst.Write(strconv.AppendInt(h.num[:0], int64(len(p)), 16))
		_, _ = dst.WriteString("\r\n")
	}
	_, err := dst.Write(p)
	if chunked && err == nil {
		_, err = dst.WriteString("\r\n")
	}
	return err
}

// copyChunked relays a chunked body from src to dst, re-framed as chunks
// when chunkOut is set (or as bare data for an HTTP/1.0 client, trailers
// dropped). strict applies the guard's rules to a client's body: CRLF
// line ends and trailer fields checked like header fields; a target's
// body may end its chunk-size lines with a bare LF, as Go's client allows.
// Trailers are forwarded (chunkOut) and count toward maxTrailer bytes.
func (h *h1conn) copyChunked(src *rbuf, dst *bufio.Writer, strict, chunkOut bool, maxTrailer int) (n int64, bad, rerr, werr error) {
	for {
		line, bad, rerr, werr := h.readLine(src, dst, maxChunkLine, strict)
		if bad != nil || rerr != nil || werr != nil {
			return n, bad, rerr, werr
		}
		size, err := chunkSize(trimEOL(line))
		if err != nil {
			return n, err, nil, nil
		}
		if size == 0 {
			break
		}
		if chunkOut {
			_, _ = dst.Write(strconv.AppendInt(h.num[:0], size, 16))
			_, _ = dst.WriteString("\r\n")
		}
		m, rerr, werr := h.copyN(src, dst, size, false)
		n += m
		if rerr != nil || werr != nil {
			return n, nil, rerr, werr
		}
		for src.buffered() < 2 {
			if rerr, werr := h.waitMore(src, dst, len(src.b)); rerr != nil || werr != nil {
				return n, nil, rerr, werr
			}
		}
		if src.b[src.r] != '\r' || src.b[src.r+1] != '\n' {
			return n, &guardError{"chunk data not followed by CRLF"}, nil, nil
		}
		src.r += 2
		if chunkOut {
			_, _ = dst.WriteString("\r\n")
		}
	}
	if chunkOut {
		_, _ = dst.WriteString("0\r\n")
	}
	total := 0
	for {
		line, bad, rerr, werr := h.readLine(src, dst, maxTrailer, strict)
		if bad != nil || rerr != nil || werr != nil {
			return n, bad, rerr, werr
		}
		if total += len(line); total > maxTrailer {
			return n, &guardError{"trailer section too large"}, nil, nil
		}
		field := trimEOL(line)
		if len(field) == 0 {
			break
		}
		if strict {
			if _, err := checkFieldLine(line); err != nil {
				return n, err, nil, nil
			}
		} else if c := bytes.IndexByte(field, ':'); c <= 0 || !isToken(field[:c]) || !validValue(field[c+1:]) {
			return n, errBadResponse, nil, nil
		}
		if chunkOut {
			_, _ = dst.Write(field)
			_, _ = dst.WriteString("\r\n")
		}
	}
	if chunkOut {
		_, werr = dst.WriteString("\r\n")
	}
	return n, nil, nil, werr
}

// readLine returns the next line of src with its LF, consumed; strict
// requires CRLF and no other CR.
func (h *h1conn) readLine(src *rbuf, dst *bufio.Writer, limit int, strict bool) (line []byte, bad, rerr, werr error) {
	scan := 0
	for {
		if i := bytes.IndexByte(src.b[src.r+scan:src.w], '\n'); i >= 0 {
			end := src.r + scan + i + 1
			line = src.b[src.r:end]
			src.r = end
			if strict && (len(line) < 2 || line[len(line)-2] != '\r') {
				return nil, &guardError{"bare LF"}, nil, nil
			}
			return line, nil, nil, nil
		}
		scan = src.buffered()
		if scan > limit {
			return nil, &guardError{"line too long"}, nil, nil
		}
		if rerr, werr = h.waitMore(src, dst, max(limit+2, len(src.b))); rerr != nil || werr != nil {
			if rerr == errHeadTooLarge {
				return nil, &guardError{"line too long"}, nil, nil
			}
			return nil, nil, rerr, werr
		}
	}
}
