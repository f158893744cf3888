package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

// reqState is the pooled per-request state: the access-log record and the
// routing input. Nothing in it outlives the request.
type reqState struct {
	rec Record
	q   request
	// idHdr and tagsHdr are x-amzn-lattice-identity and -identity-tags
	// toward the target, set by authorize (nil: not sent).
	idHdr, tagsHdr []string
}

// fillService records which service and listener served the request.
func (st *reqState) fillService(lr *listenerRoute) {
	r := &st.rec
	r.ServiceID, r.ServiceARN = lr.svc.id, lr.svc.arn
	r.NetworkARN = lr.svc.networkARN
	r.ListenerID, r.ListenerARN = lr.id, lr.arn
	r.AccessLogs = lr.svc.accessLogs
}

// finish hands the record to the observer and returns st to the pool.
func (e *Engine) finish(st *reqState) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.Observe(&st.rec)
	}
	*st = reqState{}
	e.states.Put(st)
}

// ServeHTTP serves one request on the port: route, then forward or answer.
// serve returns the generated answer for anything but a target's response,
// and this is the one place that writes it.
func (ps *portServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := ps.e
	st := e.states.Get().(*reqState)
	rec := &st.rec
	rec.Start = time.Now()
	cc, _ := r.Context().Value(connKey{}).(*clientConn)
	if cc != nil {
		cc.begin()
		defer cc.end() // deferred: a panicking request must not pin the connection busy
		rec.SNI, rec.TLSVersion, rec.TLSCipher = cc.sni, cc.tlsVersion, cc.tlsCipher
		if r.ProtoMajor == 1 && e.now()-cc.start > int64(e.cfg.MaxConnectionDuration) {
			w.Header()["Connection"] = closeHeader
		}
	}
	rec.SourceAddr = r.RemoteAddr
	rec.Method = r.Method
	rec.Path = r.RequestURI
	rec.Proto = r.Proto
	rec.Host = r.Host
	rec.UserAgent = r.Header.Get("User-Agent")
	rec.ListenerProtocol = model.ProtocolHTTP
	if cc != nil && cc.tls {
		rec.ListenerProtocol = model.ProtocolHTTPS
	}

	ge := ps.serve(w, r, st, cc)
	if ge != nil {
		rec.FailureReason = ge.reason
		if ge.status != 0 {
			rec.Generated = true
			rec.Status = ge.status
			rec.BytesSent = int64(len(ge.body))
			writeGenerated(w, ge)
		}
	}
	rec.Duration = time.Since(rec.Start)
	e.finish(st)
	if ge == errAbort || ge == errClientGone {
		// The target's response broke after its headers went out, or the
		// client went away before an answer: abort the client's stream so
		// that neither a truncated body nor net/http's implicit empty 200
		// can pass as a complete answer.
		panic(http.ErrAbortHandler)
	}
}

// closeHeader is never mutated: net/http only reads response headers.
var closeHeader = []string{"close"}

// serve routes r and forwards it or answers it with a fixed response. It
// returns the generated answer when there is one.
func (ps *portServer) serve(w http.ResponseWriter, r *http.Request, st *reqState, cc *clientConn) *genError {
	q := &st.q
	q.r, q.method, q.host, q.header, q.proto = r, r.Method, r.Host, httpHeader(r.Header), r.ProtoMajor
	rt, ge := ps.route(st, q, requestPath(r), cc, viaNetHTTP)
	if ge != nil {
		return ge
	}
	if rt.ru.fixed != 0 {
		rec := &st.rec
		rec.Generated = true
		rec.Status = rt.ru.fixed
		w.Header()["Content-Length"] = zeroLength
		w.WriteHeader(rt.ru.fixed)
		return nil
	}
	return ps.forward(w, r, st, rt.t, rt.pt, rt.g, rt.tgt, q.path)
}

var zeroLength = []string{"0"}

// requestPath is the raw (escaped) path of r without its query.
func requestPath(r *http.Request) string {
	u := r.RequestURI
	if u == "" || u[0] != '/' {
		// Absolute form (or "*"): net/http parsed it into URL.
		if u == "*" {
			return u
		}
		return r.URL.EscapedPath()
	}
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u[:i]
		}
	}
	return u
}

func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeGenerated writes a generated answer: a plain-text body (empty for
// fixed responses), never cached.
func writeGenerated(w http.ResponseWriter, ge *genError) {
	h := w.Header()
	if ge.body != "" {
		h["Content-Type"] = textPlain
		h["X-Content-Type-Options"] = noSniff
	}
	h["Content-Length"] = []string{strconv.Itoa(len(ge.body))}
	w.WriteHeader(ge.status)
	if ge.body != "" {
		_, _ = w.Write([]byte(ge.body))
	}
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)
