package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// hopHeaders are connection-specific (RFC 9110 §7.6.1) and never forwarded
// in either direction. Canonical form: net/http canonicalises the header
// names of HTTP/1 and HTTP/2 requests, so a delete by canonical key removes
// every spelling a client can send.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// latticeHeaders are set by the gateway alone (reference §5.7); copies a
// client sends are removed first, so targets can trust them.
var latticeHeaders = []string{
	"X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto",
	"X-Amzn-Lattice-Identity", "X-Amzn-Lattice-Identity-Tags",
	"X-Amzn-Lattice-Network", "X-Amzn-Lattice-Target",
}

// forward sends r to target tgt of group g and copies the response back.
//
// The inbound header map is rewritten in place and becomes the outbound
// one (no per-request header clone): hop-by-hop headers and the
// gateway-owned headers are removed, then x-forwarded-* and
// x-amzn-lattice-* are set from values precomputed at compile time. The
// path sent is the normalised one rules matched.
func (ps *portServer) forward(w http.ResponseWriter, r *http.Request, st *reqState, t *table,
	pt *portTable, g *groupRef, tgt *target, path string) *genError {
	e := ps.e
	rec := &st.rec
	h := r.Header
	keepTE := hasToken(h["Te"], "trailers")
	removeConnectionListed(h)
	for _, k := range hopHeaders {
		delete(h, k)
	}
	for _, k := range latticeHeaders {
		delete(h, k)
	}
	deleteUnderscoreTwins(h)
	if keepTE {
		h["Te"] = t.teTrailers // gRPC servers require it
	}
	// One allocation carries the outbound request, its URL, the
	// x-forwarded-for value and the body counter.
	o := new(outbound)
	o.xff[0] = clientIP(r.RemoteAddr)
	h["X-Forwarded-For"] = o.xff[:]
	h["X-Forwarded-Port"] = pt.portHdr
	if pt.tls {
		h["X-Forwarded-Proto"] = t.protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = t.protoHTTP
	}
	h["X-Amzn-Lattice-Network"] = t.networkHdr
	h["X-Amzn-Lattice-Target"] = g.targetHdr
	if st.idHdr != nil {
		h["X-Amzn-Lattice-Identity"] = st.idHdr
		if st.tagsHdr != nil {
			h["X-Amzn-Lattice-Identity-Tags"] = st.tagsHdr
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = t.emptyUA
	}

	// A shallow copy keeps r's context, so the upstream request is
	// cancelled when the client goes away.
	out := &o.req
	*out = *r
	o.url = url.URL{Scheme: g.tg.scheme, Host: tgt.addr, Opaque: path, RawQuery: r.URL.RawQuery}
	out.URL = &o.url
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Header = h
	var body *countingBody
	out.Body = nil
	// ContentLength 0 is "no body" (an HTTP/2 request ended with its
	// headers still has a Body); sending it would make the transport chunk
	// an empty body.
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = &o.body
		body.rc = r.Body
		out.Body = body
	}

	sent := time.Now()
	rec.RequestToTarget = sent.Sub(rec.Start)
	resp, err := g.tg.up.roundTrip(out)
	rec.ResponseFromTarget = time.Since(sent)
	if body != nil {
		defer func() { rec.BytesReceived = body.n.Load() }()
	}
	if err != nil {
		ge := classifyUpstreamError(r.Context(), err)
		e.log.Debug("target request failed", "target", tgt.addr, "targetGroup", g.tg.id, "err", err)
		return ge
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode

	removeConnectionListed(resp.Header)
	for _, k := range hopHeaders {
		delete(resp.Header, k)
	}
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	for k := range resp.Trailer {
		// Trailers the target announced stay announced.
		dst["Trailer"] = append(dst["Trailer"], k)
	}
	// Streams (gRPC, server-sent events, bodies of unknown length) are
	// flushed after every read so that messages are not held back.
	stream := resp.ContentLength == -1 || isGRPCContentType(firstValue(resp.Header, "Content-Type")) ||
		hasPrefixFold(firstValue(resp.Header, "Content-Type"), "text/event-stream")
	w.WriteHeader(resp.StatusCode)
	var fl http.Flusher
	if stream {
		fl, _ = w.(http.Flusher)
		// Send the headers now unless the response has ended with them
		// (a gRPC trailers-only answer must stay one HEADERS frame with
		// END_STREAM, or the client misses its status).
		if fl != nil && resp.ContentLength != 0 {
			fl.Flush()
		}
	}
	n, rerr, werr := e.copyBody(w, resp.Body, fl)
	rec.BytesSent = n
	if werr != nil {
		rec.FailureReason = errClientGone.reason
		return nil
	}
	if rerr != nil {
		e.log.Debug("target response broken", "target", tgt.addr, "err", rerr)
		return errAbort
	}
	// Trailers (gRPC's grpc-status among them) arrive with the end of the
	// body; TrailerPrefix sends them whether announced or not.
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	return nil
}

// copyBody copies src to w with a pooled buffer, flushing after every
// write when fl is set. It returns the bytes written, a read error other
// than EOF, and a write error.
func (e *Engine) copyBody(w io.Writer, src io.Reader, fl http.Flusher) (n int64, rerr, werr error) {
	bp := e.buffers.Get().(*[]byte)
	defer e.buffers.Put(bp)
	buf := *bp
	for {
		nr, err := src.Read(buf)
		if nr > 0 {
			nw, err := w.Write(buf[:nr])
			n += int64(nw)
			if err != nil {
				return n, nil, err
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// outbound is what a forwarded request allocates, in one piece. It is not
// pooled: the transport may still read the request after RoundTrip
// returns.
type outbound struct {
	req  http.Request
	url  url.URL
	xff  [1]string
	body countingBody
}

// countingBody counts the request body bytes read (the access log's
// bytesReceived). Atomic: the transport may read on its own goroutine.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// removeConnectionListed deletes the headers named in Connection.
func removeConnectionListed(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v = nextToken(v)
			switch {
			case tok == "", equalFoldLower(tok, "close"), equalFoldLower(tok, "keep-alive"),
				equalFoldLower(tok, "upgrade"), equalFoldLower(tok, "te"):
				// Hop-by-hop anyway; skip the canonicalisation.
			default:
				delete(h, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
}

// hasToken reports whether the comma-separated values hold token
// (case-insensitive, parameters ignored).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v = nextToken(v)
			for i := 0; i < len(tok); i++ {
				if tok[i] == ';' {
					tok = trimOWS(tok[:i])
					break
				}
			}
			if equalFoldLower(tok, token) {
				return true
			}
		}
	}
	return false
}

// nextToken splits a comma-separated list: the first element, trimmed,
// and the rest.
func nextToken(v string) (tok, rest string) {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			return trimOWS(v[:i]), v[i+1:]
		}
	}
	return trimOWS(v), ""
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func hasPrefixFold(s, lowerPrefix string) bool {
	return len(s) >= len(lowerPrefix) && equalFoldLower(s[:len(lowerPrefix)], lowerPrefix)
}

// clientIP is the address part of a RemoteAddr ("ip:port", "[v6]:port").
func clientIP(remote string) string {
	for i := len(remote) - 1; i >= 0; i-- {
		if remote[i] == ':' {
			remote = remote[:i]
			break
		}
	}
	if len(remote) > 1 && remote[0] == '[' && remote[len(remote)-1] == ']' {
		remote = remote[1 : len(remote)-1]
	}
	return remote
}

// deleteUnderscoreTwins removes headers that spell a gateway-owned header
// with '_' for '-' (X_amzn_lattice_identity): servers that map header
// names to CGI-style variables read them as the real one. So are
// Content_Length and Transfer_Encoding, by which such a server would frame
// the request (HTTP/1 clients get 400 for them from the framing guard;
// this is for HTTP/2 clients). Names without '_' cost one scan.
func deleteUnderscoreTwins(h http.Header) {
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		if h1wire.FramingTwin(k) {
			delete(h, k)
			continue
		}
		d := strings.ReplaceAll(k, "_", "-")
		for _, l := range latticeHeaders {
			if strings.EqualFold(d, l) {
				delete(h, k)
				break
			}
		}
	}
}
