package proxy

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/h2server"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// ServeStream is the HTTP/2 direct path (h2server.StreamHandler): a
// request without a body, or a POST, PUT or PATCH with one (h2body.go),
// for a service whose forward rules all lead to
// HTTP1 target groups over HTTP and which has no auth policy, is routed
// from its decoded fields and sent over the HTTP/1 fast path's pooled
// target connections; the response head is parsed in place (h1wire) and
// re-encoded as HTTP/2 fields, the body relayed as DATA frames. No
// http.Request, header map or per-request context is built. Anything
// else is declined (false) and served by ServeHTTP. The headers removed
// and added, the generated answers and the record are ServeHTTP's.
func (ps *portServer) ServeStream(r *h2server.Request) bool {
	e := ps.e
	if !e.h2direct || !directBody(r) {
		return false
	}
	cc, _ := r.ConnContext().Value(connKey{}).(*clientConn)
	st := e.states.Get().(*reqState)
	rec := &st.rec
	rec.Start = time.Now()
	q := &st.q
	q.method, q.host, q.header, q.proto = r.Method, r.Authority, (*fieldsHeader)(&r.Fields), 2
	rt, ge := ps.route(st, q, pathOnly(r.Path), cc, viaH2Direct)
	if ge == errHandOff {
		*st = reqState{}
		e.states.Put(st)
		return false
	}
	if cc != nil {
		cc.begin()
		defer cc.end()
		rec.SNI, rec.TLSVersion, rec.TLSCipher = cc.sni, cc.tlsVersion, cc.tlsCipher
	}
	rec.SourceAddr = r.RemoteAddr
	rec.Method = r.Method
	rec.Path = r.Path
	rec.Proto = "HTTP/2.0"
	rec.Host = r.Authority
	rec.UserAgent = firstHeader(q.header, "User-Agent")
	rec.ListenerProtocol = ps.listenerProtocol(cc)

	d := e.directs.Get().(*direct)
	switch {
	case ge != nil:
	case rt.ru.fixed != 0:
		rec.Generated = true
		rec.Status = rt.ru.fixed
		d.fields = append(d.fields[:0], hpack.HeaderField{Name: "content-length", Value: "0"})
		_ = r.WriteHead(rt.ru.fixed, d.fields, 0, true)
	default:
		ge = d.forward(ps, r, st, &rt)
	}
	if ge != nil {
		rec.FailureReason = ge.reason
		if ge.status != 0 {
			rec.Generated = true
			rec.Status = ge.status
			rec.BytesSent = int64(len(ge.body))
			d.writeGenerated(r, ge)
		}
	}
	d.release(e)
	rec.Duration = time.Since(rec.Start)
	e.finish(st)
	if ge == errAbort || ge == errClientGone {
		// As ServeHTTP: the stream is reset, so that a truncated body
		// cannot pass as a complete answer.
		panic(http.ErrAbortHandler)
	}
	return true
}

// listenerProtocol is the record's listener protocol.
func (ps *portServer) listenerProtocol(cc *clientConn) string {
	if cc != nil && cc.tls {
		return model.ProtocolHTTPS
	}
	return model.ProtocolHTTP
}

// pathOnly is a request target without its query.
func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i]
		}
	}
	return p
}

// fieldsHeader reads HTTP/2 header fields, whose names are lower case.
type fieldsHeader []hpack.HeaderField

func (h *fieldsHeader) Next(name string, from int) (string, int) {
	for i := from; i < len(*h); i++ {
		if f := &(*h)[i]; equalFoldLower(name, f.Name) {
			return f.Value, i + 1
		}
	}
	return "", -1
}

// direct is the pooled state of one request on the direct path.
type direct struct {
	h1wire.Relay
	// The request being forwarded.
	ps  *portServer
	r   *h2server.Request
	st  *reqState
	fwd routed

	head     []byte        // the request head toward the target
	buffered bool          // head is followed by the whole request body (readSmallBody)
	pump     bodyPump      // a streamed body's goroutine (duplex.go)
	down     *bufio.Writer // toward the client, over sink
	sink     streamSink
	resp     h1wire.Head
	ends     []int32
	fields   []hpack.HeaderField
	trail    []hpack.HeaderField
}

// Toward the client a small buffer suffices: the stream copies what it is
// given into its connection's queue, and bufio passes writes larger than
// its buffer straight through. The pool holds one direct per stream
// running at once (hundreds under load), so the sizes count.
const directDownBuf = 2 << 10

func newDirect(e *Engine) *direct {
	d := &direct{head: make([]byte, 0, 1<<10)}
	d.down = bufio.NewWriterSize(&d.sink, directDownBuf)
	d.Bufs = &e.buffers
	d.Trailer = d.addTrailer
	return d
}

// release returns d to the pool, holding nothing of the request.
// Slices longer than maxPooledFields (a response head with that many
// fields) are dropped rather than pooled.
func (d *direct) release(e *Engine) {
	d.Relay.Release()
	d.ps, d.r, d.st, d.fwd = nil, nil, nil, routed{}
	d.down.Reset(&d.sink)
	d.sink = streamSink{}
	// The head's fields point into the target connection's buffer.
	clear(d.resp.Fields[:cap(d.resp.Fields)])
	clear(d.resp.ConnList[:cap(d.resp.ConnList)])
	d.resp.Reset()
	clear(d.fields)
	clear(d.trail)
	d.fields, d.trail, d.ends = d.fields[:0], d.trail[:0], d.ends[:0]
	if cap(d.resp.Fields) > maxPooledFields || cap(d.fields) > maxPooledFields ||
		cap(d.trail) > maxPooledFields || cap(d.ends) > maxPooledFields {
		d.resp, d.fields, d.trail, d.ends = h1wire.Head{}, nil, nil, nil
	}
	if cap(d.head) > maxPooledHead {
		d.head = make([]byte, 0, 1<<10)
	}
	d.buffered = false
	e.directs.Put(d)
}

const maxPooledFields = 64

// maxPooledHead bounds the request-head buffer a pooled direct keeps: a
// head with a small body (readSmallBody) up to that size costs no
// allocation, and hundreds of pooled directs hold little (under h2load
// -c64 -m10, 640 run at once).
const maxPooledHead = 4 << 10

// streamSink writes a response body into the stream; flush sends every
// write at once (streams, bodies of unknown length).
type streamSink struct {
	r     *h2server.Request
	flush bool
	n     int64
}

func (s *streamSink) Write(p []byte) (int, error) {
	n, err := s.r.Write(p)
	s.n += int64(n)
	if err == nil && s.flush {
		err = s.r.Flush()
	}
	return n, err
}

// forward sends the request to rt.tgt and relays the response, over the
// HTTP/1 fast path's pooled connections (forwardOver).
func (d *direct) forward(ps *portServer, r *h2server.Request, st *reqState, rt *routed) *genError {
	d.ps, d.r, d.st, d.fwd = ps, r, st, *rt
	// The head is the same for every attempt.
	d.head = appendRequestHead(d.head[:0], r, rt, st.q.path)
	oneWrite := r.Body == nil
	if r.Body != nil {
		// As on the HTTP/1 loop: a client silent for the service's idle
		// timeout in the middle of its body ends the request.
		r.SetBodyIdle(rt.lr.svc.idle)
		small, n, err := d.readSmallBody(r)
		st.rec.BytesReceived = n
		if err != nil {
			return errClientGone
		}
		oneWrite = small
	}
	return ps.e.forwardOver(&st.rec, rt, oneWrite, d)
}

// exchange sends the request on uc and relays the response; retry asks
// for another connection (the caller closes uc).
func (d *direct) exchange(uc *upConn, reused bool, sent time.Time) (ge *genError, retry bool) {
	e, r, st, rt := d.ps.e, d.r, d.st, &d.fwd
	rec := &st.rec
	// A reset stream closes the target connection (Watch), which ends
	// whatever read or write waits on it, whatever deadlines the exchange
	// has set.
	if !r.Watch(uc.c) {
		uc.pool.put(uc, e.now()) // unused
		return errClientGone, false
	}
	// Only a request without a body goes again after it was sent, as on
	// the other paths (a failure before anything was sent, notIdle, is
	// another matter).
	canRetry := reused && idempotent(r.Method) && r.Body == nil
	uc.w.D = uc.pool.up.idle
	uc.in.Idle = uc.pool.up.idle
	if r.Body != nil && !d.buffered {
		return d.exchangeStreamed(uc, sent)
	}
	uc.in.ArmRead(sent, uc.pool.up.rht)
	// The head goes out and the answer's first bytes come in, without a
	// read in between that would find nothing (rawio). A write that
	// fails is handled as a head that does not come.
	uc.w.Now = sent
	err := uc.in.WriteFill(&uc.w, d.head)
	uc.w.Now = time.Time{}
	if errors.Is(err, rawio.ErrNotIdle) {
		if !r.Watch(nil) {
			_ = uc.c.Close()
			return errClientGone, false
		}
		return notIdle(uc, reused)
	}

	var fresh bool
	d.ends, fresh, err = uc.readHead(&d.resp, d.ends, err)
	rec.ResponseFromTarget = time.Since(sent)
	if err != nil {
		if !r.Watch(nil) {
			_ = uc.c.Close()
			return errClientGone, false
		}
		if canRetry && fresh {
			return nil, true
		}
		_ = uc.c.Close()
		e.log.Debug("target request failed", "target", uc.pool.addr, "targetGroup", rt.g.tg.id, "err", err)
		return classifyTargetError(err), false
	}
	rec.Status = d.resp.Status
	return d.relayResponse(e, r, rec, uc), false
}

// appendRequestHead appends the HTTP/1.1 head sent to the target to b: what
// ServeHTTP's forward sends for the request. The method, the
// normalised path with the raw query, Host from :authority, the client's
// fields less the hop-by-hop ones and the gateway's own (and their '_'
// spellings, and those of the framing fields), the body's framing
// (appendBodyFraming), then x-forwarded-* and x-amzn-lattice-*.
func appendRequestHead(b []byte, r *h2server.Request, rt *routed, path string) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, path...)
	for i := 0; i < len(r.Path); i++ {
		if r.Path[i] == '?' {
			if i+1 < len(r.Path) { // a bare '?' is not sent, as on the other paths
				b = append(b, r.Path[i:]...)
			}
			break
		}
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Authority...)
	b = append(b, "\r\n"...)
	ua, te := false, false
	for i := range r.Fields {
		f := &r.Fields[i]
		switch h1wire.ClassifyField(f.Name) {
		case h1wire.FieldTE:
			// te: trailers only (h2server checked): gRPC servers need
			// it. Once, as forward.go sends it.
			if te {
				continue
			}
			te = true
		case h1wire.FieldUserAgent:
			// The first only, and not when empty, as net/http's client
			// sends it.
			if ua {
				continue
			}
			if ua = true; f.Value == "" {
				continue
			}
		case h1wire.FieldContentLength, h1wire.FieldTrailer, h1wire.FieldHop, h1wire.FieldLattice:
			continue
		default:
			if h1wire.FramingTwin(f.Name) {
				continue
			}
		}
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	b = appendBodyFraming(b, r)
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, clientIP(r.RemoteAddr)...)
	b = append(b, "\r\nX-Forwarded-Port: "...)
	b = append(b, rt.pt.portHdr[0]...)
	if rt.pt.tls {
		b = append(b, "\r\nX-Forwarded-Proto: https\r\nX-Amzn-Lattice-Network: "...)
	} else {
		b = append(b, "\r\nX-Forwarded-Proto: http\r\nX-Amzn-Lattice-Network: "...)
	}
	b = append(b, rt.t.networkHdr[0]...)
	b = append(b, "\r\nX-Amzn-Lattice-Target: "...)
	b = append(b, rt.g.targetHdr[0]...)
	b = append(b, "\r\n\r\n"...)
	return b
}

// relayResponse sends the response head as HTTP/2 fields (hop-by-hop
// fields and those Connection names left out, names in lower case) and
// relays the body as DATA frames, a chunked body's trailers as trailers;
// the target connection goes back to its pool when the response ended
// cleanly.
func (d *direct) relayResponse(e *Engine, r *h2server.Request, rec *Record, uc *upConn) *genError {
	rh := &d.resp
	// A connection whose request body did not all go (an early answer)
	// is not used again: the target may still wait for the rest.
	upKeep := !rh.ConnClose && (!rh.HTTP10 || rh.ConnKeepAlive)
	var mode respMode
	switch {
	case r.Method == http.MethodHead || rh.Status == http.StatusNoContent || rh.Status == http.StatusNotModified:
		mode = respNone
	case rh.Chunked:
		mode = respChunked
	case rh.Length >= 0:
		mode = respLength
	default:
		mode, upKeep = respUntilClose, false
	}
	base := uc.in.B[uc.in.R:]
	for i := range rh.Fields {
		name := rh.Fields[i].Name
		for j, c := range name {
			name[j] = h1wire.LowerASCII(c)
		}
	}
	// One string holds every name and value of the head.
	text := string(base[:rh.Size])
	at := func(b []byte) string {
		off := cap(base) - cap(b)
		return text[off : off+len(b)]
	}
	flush := mode == respChunked || mode == respUntilClose
	d.fields = d.fields[:0]
	length := false
	for i := range rh.Fields {
		f := &rh.Fields[i]
		switch f.Kind {
		case h1wire.FieldConnection, h1wire.FieldTE, h1wire.FieldTransferEncoding, h1wire.FieldHop:
			continue
		case h1wire.FieldContentLength:
			// Transfer-Encoding wins (RFC 9112 §6.3); repeats of the one
			// length the parser allows are sent once (an HTTP/2 client
			// may refuse a repeated content-length).
			if rh.Chunked || length {
				continue
			}
			length = true
		case h1wire.FieldTrailer:
			// Announces trailers only a chunked body can carry.
			if !rh.Chunked {
				continue
			}
		default:
			if len(rh.ConnList) > 0 && rh.Listed(f.Name) {
				continue
			}
		}
		hf := hpack.HeaderField{Name: at(f.Name), Value: at(f.Value)}
		if hf.Name == "content-type" && (isGRPCContentType(hf.Value) || hasPrefixFold(hf.Value, "text/event-stream")) {
			flush = true
		}
		d.fields = append(d.fields, hf)
	}
	uc.in.R += rh.Size
	declared := int64(-1)
	if mode == respLength {
		declared = rh.Length
	}
	end := mode == respNone || mode == respLength && rh.Length == 0
	if err := r.WriteHead(rh.Status, d.fields, declared, end); err != nil {
		_ = uc.c.Close()
		return errClientGone
	}
	if flush && !end {
		_ = r.Flush() // the head now: the body may take its time
	}
	var bad, rerr, werr error
	d.sink = streamSink{r: r, flush: flush}
	switch mode {
	case respLength:
		_, rerr, werr = d.CopyN(&uc.in, d.down, rh.Length, false)
	case respChunked:
		_, bad, rerr, werr = d.CopyChunked(&uc.in, d.down, false, false, maxResponseHead)
	case respUntilClose:
		_, rerr, werr = d.CopyN(&uc.in, d.down, -1, false)
	}
	if bad == nil && rerr == nil && werr == nil {
		werr = d.down.Flush()
	}
	rec.BytesSent = d.sink.n
	// A streamed body still going is cut: the target may still wait for
	// it, so its connection is not used again.
	body := d.settleBody()
	watched := r.Watch(nil)
	switch {
	case werr != nil, body == bodyClientFault, !watched && (bad != nil || rerr != nil):
		// The client went away, or reset its stream, which closed the
		// target connection under the body's read.
		_ = uc.c.Close()
		return errClientGone
	case bad != nil || rerr != nil:
		_ = uc.c.Close()
		e.log.Debug("target response broken", "target", uc.pool.addr, "err", errors.Join(bad, rerr))
		return errAbort
	}
	if len(d.trail) > 0 {
		r.SetTrailers(d.trail)
	}
	if watched && upKeep && body == bodyWhole && uc.in.Buffered() == 0 {
		if len(uc.in.B) > 4*upstreamReadBuf {
			// A large head grew it; idle connections keep the usual size.
			uc.in.B, uc.in.R, uc.in.W = make([]byte, upstreamReadBuf), 0, 0
		}
		uc.pool.put(uc, e.now())
	} else {
		_ = uc.c.Close()
	}
	return nil
}

// addTrailer keeps a trailer field of a chunked response body.
func (d *direct) addTrailer(field []byte) {
	for i, c := range field {
		if c == ':' {
			d.trail = append(d.trail, hpack.HeaderField{
				Name:  string(field[:i]),
				Value: string(trimOWSBytes(field[i+1:])),
			})
			return
		}
	}
}

// trimOWSBytes trims spaces and tabs from both ends of b.
func trimOWSBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// writeGenerated writes a generated answer as ServeHTTP's writeGenerated
// does.
func (d *direct) writeGenerated(r *h2server.Request, ge *genError) {
	d.fields = d.fields[:0]
	if ge.body != "" {
		d.fields = append(d.fields,
			hpack.HeaderField{Name: "content-type", Value: textPlain[0]},
			hpack.HeaderField{Name: "x-content-type-options", Value: noSniff[0]})
	}
	d.fields = append(d.fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(ge.body))})
	if r.WriteHead(ge.status, d.fields, int64(len(ge.body)), ge.body == "") == nil && ge.body != "" {
		_, _ = r.Write([]byte(ge.body))
	}
}
