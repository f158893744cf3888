package proxy

import (
	"errors"
	"net"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// exchanger is a request path's exchange on a target connection: the
// HTTP/1 fast path's (h1conn) and the HTTP/2 direct path's (direct). It
// sends the request on uc and relays the response; retry asks for the
// request to be sent again on a new connection (uc is then closed by the
// caller).
type exchanger interface {
	exchange(uc *upConn, reused bool, sent time.Time) (ge *genError, retry bool)
}

// forwardOver sends a request to rt.tgt over one of the fast path's
// pooled connections, or a new one, with x's exchange. A request whose
// reused connection fails before any byte of the response arrives is sent
// again once on a new connection when x asks: one without a body and with
// an idempotent method (the target may have closed the idle connection as
// the request went out; another method might have been carried out, as
// Go's client and nginx also assume), or any one that was not sent at all
// (rawio.ErrNotIdle). oneWrite says the whole request goes out in one
// write, whose call checks the connection (the pool need not probe it).
func (e *Engine) forwardOver(rec *Record, rt *routed, oneWrite bool, x exchanger) *genError {
	p := rt.tgt.pool
	if p == nil {
		return errTargetConnect // not an HTTP1 group over HTTP; route prevents it
	}
	uc := p.get(e.at(rec.Start), oneWrite)
	reused := uc != nil
	sent := time.Now()
	rec.RequestToTarget = sent.Sub(rec.Start)
	for {
		if uc == nil {
			var err error
			if uc, err = p.dial(); err != nil {
				rec.ResponseFromTarget = time.Since(sent)
				e.log.Debug("target request failed", "target", p.addr, "targetGroup", rt.g.tg.id, "err", err)
				return classifyTargetError(err)
			}
		}
		ge, retry := x.exchange(uc, reused, sent)
		if !retry {
			return ge
		}
		_ = uc.c.Close()
		uc, reused = nil, false
	}
}

// forward sends the current request to rt.tgt and relays the response,
// as forward.go does on the net/http path: the same headers are removed
// and added, the path sent is the normalised one (st.q.path).
func (h *h1conn) forward(rt *routed) *genError {
	h.fwd = *rt
	ge := h.ps.e.forwardOver(&h.st.rec, rt, h.oneWrite(), h)
	h.fwd = routed{}
	return ge
}

// oneWrite says the current request goes to its target in one write: no
// body, or a small one that has arrived whole (and no 100-continue to
// send first).
func (h *h1conn) oneWrite() bool {
	return h.body == bodyNone || h.body == bodyLength && !h.expect && int64(h.in.Buffered()) >= h.remain
}

// notIdle handles a pooled connection WriteFill found not idle (closed by
// the target, or holding a stray byte): nothing was sent, so any request
// goes again on a new connection; on a new one it is the target's fault.
func notIdle(uc *upConn, reused bool) (ge *genError, retry bool) {
	if reused {
		return nil, true
	}
	_ = uc.c.Close()
	return errTargetConnect, false
}

// classifyTargetError answers a failed dial, write or response head: 504
// for a timeout, 502 otherwise.
func classifyTargetError(err error) *genError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTargetTimeout
	}
	return errTargetConnect
}

// exchange sends the request on uc and relays the response. retry asks
// for the request to be sent again on a new connection (uc is then
// closed by the caller).
func (h *h1conn) exchange(uc *upConn, reused bool, sent time.Time) (ge *genError, retry bool) {
	e := h.ps.e
	rec := &h.st.rec
	rt, path := &h.fwd, h.st.q.path
	canRetry := reused && h.body == bodyNone && idempotent(rec.Method)
	uc.w.D = uc.pool.up.idle
	uc.in.Idle = uc.pool.up.idle
	rht := uc.pool.up.rht
	hb := &h.upHead
	*hb = (*hb)[:0]
	h.writeRequestHead(hb, rt, path)
	uc.w.Now = sent
	var err error
	if h.oneWrite() {
		// The whole request in one write (a small body that has arrived
		// goes with the head), and the answer's first bytes read without
		// a read in between that would find nothing (rawio). A write that
		// fails is handled as a head that does not come. The response
		// head is due within ResponseHeaderTimeout.
		n := 0
		if h.body == bodyLength {
			n = int(h.remain)
			_, _ = hb.Write(h.in.B[h.in.R : h.in.R+n])
		}
		uc.in.ArmRead(sent, rht)
		err = uc.in.WriteFill(&uc.w, *hb)
		uc.w.Now = time.Time{}
		if errors.Is(err, rawio.ErrNotIdle) {
			return notIdle(uc, reused) // the body is still unread, for another try
		}
		if n > 0 {
			h.in.R += n
			rec.BytesReceived = h.remain
			h.unread = false
		}
		return h.readResponse(rt, uc, canRetry, sent, err)
	}
	_, err = uc.w.Write(*hb)
	uc.w.Now = time.Time{}
	if err != nil {
		if canRetry {
			return nil, true
		}
		e.log.Debug("target request failed", "target", uc.pool.addr, "err", err)
		_ = uc.c.Close()
		return classifyTargetError(err), false
	}
	if h.expect {
		_, _ = h.out.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := h.out.Flush(); err != nil {
			_ = uc.c.Close()
			return errClientGone, false
		}
	}
	// The body goes on its own goroutine while this one waits for the
	// answer and relays it (duplex.go).
	h.up.Reset(&uc.w)
	h.rcut.Conn, h.rcut.stopped = h.c, false
	h.in.C = &h.rcut
	h.ends, err = h.pump.sendReadingHead(uc, h, e.log, &h.resp, h.ends)
	rec.ResponseFromTarget = time.Since(sent)
	if err != nil {
		_ = uc.c.Close()
		switch h.settleBody() {
		case bodyClientFault:
			if h.pump.bad != nil {
				return errBadBody, false
			}
			return errClientGone, false
		}
		e.log.Debug("target request failed", "target", uc.pool.addr, "targetGroup", rt.g.tg.id, "err", err)
		return classifyTargetError(err), false
	}
	rec.Status = h.resp.Status
	ge = h.relayResponse(uc)
	h.settleBody() // relayResponse did, unless it failed
	return ge, false
}

// sendBody streams the request body to the target (bodySender, on the
// body's goroutine): Content-Length bytes, or chunks re-framed
// (extensions dropped, as net/http does) with their trailers, under the
// guard's rules.
func (h *h1conn) sendBody() (n int64, bad, rerr, werr error) {
	w := h.up
	if h.body == bodyLength {
		n, rerr, werr = h.inRelay.CopyN(&h.in, w, h.remain, false)
	} else {
		n, bad, rerr, werr = h.inRelay.CopyChunked(&h.in, w, true, true, h.ps.e.cfg.MaxHeaderBytes)
	}
	if bad == nil && rerr == nil && werr == nil {
		werr = w.Flush()
	}
	return n, bad, rerr, werr
}

// cutBody stops the body's reads from the client (bodySender).
func (h *h1conn) cutBody() { h.rcut.stop() }

// settleBody ends the current request's body, if one is streamed
// (bodyPump.settle), and takes its outcome. A body that did not go whole
// leaves the client connection unfit for another request (its rest is
// unread, or broken).
func (h *h1conn) settleBody() bodyEnd {
	p := &h.pump
	if !p.running {
		return bodyWhole
	}
	end := p.settle()
	h.st.rec.BytesReceived = p.n
	h.in.C = h.c
	if p.cut {
		h.in.Until = staleDeadline // rcut dropped the reader's deadlines
	}
	h.inRelay.Release()
	if p.bad != nil {
		h.ps.e.log.Debug("request body rejected", "remote", h.remote, "reason", p.bad.Error())
	}
	if end == bodyWhole {
		h.unread = false
	} else {
		h.keep = false
	}
	return end
}

// readResponse reads the response head of a request sent in one write,
// 1xx answers dropped (at most five, as in Go's client), and relays the
// response. err is the failure of the write, handled as a head that does
// not come.
func (h *h1conn) readResponse(rt *routed, uc *upConn, canRetry bool, sent time.Time, err error) (ge *genError, retry bool) {
	e := h.ps.e
	rec := &h.st.rec
	var fresh bool
	h.ends, fresh, err = uc.readHead(&h.resp, h.ends, err)
	if err != nil {
		_ = uc.c.Close()
		if canRetry && fresh {
			return nil, true
		}
		rec.ResponseFromTarget = time.Since(sent)
		e.log.Debug("target request failed", "target", uc.pool.addr, "targetGroup", rt.g.tg.id, "err", err)
		return classifyTargetError(err), false
	}
	rec.ResponseFromTarget = time.Since(sent)
	rec.Status = h.resp.Status
	return h.relayResponse(uc), false
}

// readHead reads the final response head on uc into rh (ends: scratch
// for its line ends), dropping informational answers: at most four, as
// Go's client; a 101 is an error. err is the failure of the request's
// write, handled as a head that does not come. fresh says a failure came
// before any byte of the response, and not from a deadline: the request
// may go again on a new connection.
func (uc *upConn) readHead(rh *h1wire.Head, ends []int32, err error) (_ []int32, fresh bool, _ error) {
	for n1xx := 0; ; n1xx++ {
		rh.Reset()
		if err == nil {
			ends, err = uc.in.HeadLines(ends[:0], maxResponseHead, false, nil)
		}
		if err == nil {
			err = rh.ParseResponse(uc.in.B[uc.in.R:], ends)
		}
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			return ends, n1xx == 0 && uc.in.Buffered() == 0 && !timeout, err
		}
		if rh.Status >= 200 {
			return ends, false, nil
		}
		if rh.Status == 101 || n1xx == 4 {
			return ends, false, errUnexpected1xx
		}
		uc.in.R += rh.Size
	}
}

var errUnexpected1xx = errors.New("a 101 or more than four informational answers")

// wireBuf collects a request head (and a small body) written in one call.
type wireBuf []byte

func (b *wireBuf) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

func (b *wireBuf) WriteString(s string) (int, error) {
	*b = append(*b, s...)
	return len(s), nil
}

func (b *wireBuf) WriteByte(c byte) error {
	*b = append(*b, c)
	return nil
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
func (h *h1conn) writeRequestHead(w *wireBuf, rt *routed, path string) {
	hd := &h.head
	_, _ = w.Write(hd.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(path)
	for i, c := range hd.Target {
		if c == '?' {
			if i+1 < len(hd.Target) {
				_, _ = w.Write(hd.Target[i:])
			}
			break
		}
	}
	_, _ = w.WriteString(" HTTP/1.1\r\n")
	for i := range hd.Fields {
		f := &hd.Fields[i]
		switch f.Kind {
		case h1wire.FieldConnection, h1wire.FieldTE, h1wire.FieldTransferEncoding, h1wire.FieldTrailer, h1wire.FieldHop, h1wire.FieldLattice:
			continue
		case h1wire.FieldOther, h1wire.FieldUserAgent, h1wire.FieldExpect, h1wire.FieldDate:
			if len(hd.ConnList) > 0 && hd.Listed(f.Name) {
				continue
			}
		}
		_, _ = w.Write(f.Name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.Value)
		_, _ = w.WriteString("\r\n")
	}
	if hd.TETrailers {
		_, _ = w.WriteString("TE: trailers\r\n") // gRPC servers require it
	}
	if h.body == bodyChunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("X-Forwarded-For: ")
	_, _ = w.WriteString(h.ip)
	_, _ = w.WriteString("\r\nX-Forwarded-Port: ")
	_, _ = w.WriteString(rt.pt.portHdr[0])
	if h.tc != nil {
		_, _ = w.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Amzn-Lattice-Network: ")
	} else {
		_, _ = w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Amzn-Lattice-Network: ")
	}
	_, _ = w.WriteString(rt.t.networkHdr[0])
	_, _ = w.WriteString("\r\nX-Amzn-Lattice-Target: ")
	_, _ = w.WriteString(rt.g.targetHdr[0])
	_, _ = w.WriteString("\r\n\r\n")
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
	upKeep := !rh.ConnClose && (!rh.HTTP10 || rh.ConnKeepAlive)
	var mode respMode
	switch {
	case h.isHead || rh.Status == 204 || rh.Status == 304:
		mode = respNone
	case rh.Chunked:
		mode = respChunked
	case rh.Length >= 0:
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
	if h.pump.running {
		// A body still coming when the answer starts (an early 413, an
		// echo) may be cut, and one that failed leaves the client's input
		// unread: the connection may close after the answer, which its
		// head says, as net/http's server does.
		if going, failed := h.pump.going(); going || failed {
			h.keep = false
		}
	}

	w := h.out
	h.WriteResponseHead(w, rh, h.http10, mode == respChunked, chunkOut)
	if !rh.HasDate {
		h.writeDate()
	}
	if chunkOut {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	h.writeConnection()
	_, _ = w.WriteString("\r\n")
	uc.in.R += rh.Size

	var n int64
	var bad, rerr, werr error
	switch mode {
	case respLength:
		n, rerr, werr = h.CopyN(&uc.in, w, rh.Length, false)
	case respChunked:
		n, bad, rerr, werr = h.CopyChunked(&uc.in, w, false, chunkOut, maxResponseHead)
	case respUntilClose:
		n, rerr, werr = h.CopyN(&uc.in, w, -1, chunkOut)
		if rerr == nil && werr == nil && chunkOut {
			_, werr = w.WriteString("0\r\n\r\n")
		}
	}
	rec.BytesSent = n
	h.end = time.Now()
	// A streamed body still going is cut: the target may still wait for
	// it, so its connection is not used again.
	end := h.settleBody()
	switch {
	case werr != nil || end == bodyClientFault:
		_ = uc.c.Close()
		return errClientGone
	case bad != nil || rerr != nil:
		_ = uc.c.Close()
		e.log.Debug("target response broken", "target", uc.pool.addr, "err", errors.Join(bad, rerr))
		return errAbort
	}
	if upKeep && end == bodyWhole && uc.in.Buffered() == 0 {
		if len(uc.in.B) > 4*upstreamReadBuf {
			// A large head grew it; idle connections keep the usual size.
			uc.in.B, uc.in.R, uc.in.W = make([]byte, upstreamReadBuf), 0, 0
		}
		uc.pool.put(uc, e.at(h.end))
	} else {
		_ = uc.c.Close()
	}
	return nil
}
