package egress

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// reqState is what one request keeps while it is served; pooled.
type reqState struct {
	rec       Record
	tried     triedSet
	retrySlot bool // holds one of service.retrying
	grpc      bool // the request is a gRPC call (content-type application/grpc)
	abort     bool // cut the client's stream once everything is recorded
}

// ServeHTTP serves one request of the service, for the HTTP/2 server of
// h2c connections and of TLS connections that chose h2.
func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handle(r.Context(), w, r)
}

// handle serves one request in ctx: the chain is breaker, timeouts,
// header rewrite, then attempts (try) until one may not be retried, and
// finally either the endpoint's response (forward) or an answer of the
// proxy's own (answer). Every request ends with a Record.
func (s *service) handle(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	p := s.p
	st := p.states.Get().(*reqState)
	*st = reqState{}
	rec := &st.rec
	pol := s.pol.Load()
	*rec = Record{
		Kind: KindRequest, Service: s.name, Protocol: pol.Protocol, Client: r.RemoteAddr,
		Method: r.Method, Path: r.URL.Path, Host: r.Host, Proto: r.Proto,
		Start: time.Now(), GRPCStatus: -1,
	}
	if r.TLS != nil {
		rec.PeerURI = requestPeerURI(ctx)
	}
	st.grpc = isGRPC(r.Header)
	s.requests.Add(1)
	active := s.active.Add(1)
	defer func() {
		s.active.Add(-1)
		if st.retrySlot {
			s.retrying.Add(-1)
		}
		rec.Duration = time.Since(rec.Start)
		if p.obs != nil {
			p.obs.Observe(rec)
		}
		abort := st.abort
		p.states.Put(st)
		if abort {
			// Cut the client's stream (HTTP/2 RST_STREAM, HTTP/1.1 close)
			// so that a truncated response is not taken for a whole one.
			panic(http.ErrAbortHandler)
		}
	}()

	if r.Method == http.MethodConnect {
		s.answer(w, st, http.StatusMethodNotAllowed, FailureBadRequest,
			"CONNECT is not supported by the service connect proxy of "+strconv.Quote(s.name))
		return
	}
	if max := pol.Breaker.MaxRequests; max > 0 && active > int64(max) {
		s.overflows.Add(1)
		rec.BreakerOpen = true
		s.answer(w, st, http.StatusServiceUnavailable, FailureOverflow,
			"upstream overflow: service "+strconv.Quote(s.name)+" has "+strconv.Itoa(max)+
				" requests in flight (circuit breaker MaxRequests)")
		return
	}

	if pol.PerRequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, pol.PerRequestTimeout, errRequestTimeout)
		defer cancel()
	}
	var idle *idleWatch
	if pol.idleWatch {
		ctx, idle = newIdleWatch(ctx, pol.IdleTimeout, p)
		defer idle.stop()
	}
	s.rewriteRequest(r, st)
	var body *replayBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = newReplayBody(r.Body, r.ContentLength, idle)
		defer func() {
			body.finish()
			rec.BytesIn = body.total()
		}()
	}
	s.serve(ctx, w, r, st, pol, body, idle)
}

// serve runs the attempts and answers.
func (s *service) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, st *reqState,
	pol *policy, body *replayBody, idle *idleWatch) {
	rec := &st.rec
	up := s.up.Load()
	var at *attempt
	for n := 0; ; n++ {
		ep, allEjected := s.eps.Load().pick(s.p.now(), &st.tried)
		if ep == nil {
			s.answer(w, st, http.StatusServiceUnavailable, FailureNoEndpoints,
				"no healthy upstream: service "+strconv.Quote(s.name)+" has no endpoints")
			return
		}
		rec.AllEjected = rec.AllEjected || allEjected
		st.tried.add(ep)
		rec.Endpoint, rec.EndpointAddr = ep.key, ep.Addr
		at = s.try(ctx, r, ep, pol, up, body)
		if !s.shouldRetry(st, at, pol, n, r.Method, body) {
			break
		}
		if at.sent {
			s.report(ep, at.healthStatus(), pol)
		}
		s.endAttempt(at, pol)
		s.log.Debug("retrying", "endpoint", ep.key, "outcome", at.oc.String(), "status", at.status, "err", at.err)
		if !backoff(ctx, n, time.Time{}) {
			at = &attempt{oc: ctxOutcome(ctx), grpc: -1}
			break
		}
		rec.Retries++
		s.retries.Add(1)
	}
	defer s.endAttempt(at, pol)
	at.finalStatus = at.healthStatus()
	if at.sent && at.oc != outClientGone {
		defer func() {
			if at.finalStatus != at.reported {
				s.report(at.ep, at.finalStatus, pol)
			}
		}()
	}
	if at.oc == outResponse {
		s.forward(ctx, w, st, at, pol, idle)
		return
	}
	s.fail(w, st, at, pol)
}

// fail answers a request whose last attempt got no response.
func (s *service) fail(w http.ResponseWriter, st *reqState, at *attempt, pol *policy) {
	rec := &st.rec
	switch at.oc {
	case outConnect:
		s.answer(w, st, http.StatusServiceUnavailable, FailureConnect,
			"upstream connect error or disconnect/reset before headers: service "+strconv.Quote(s.name)+
				": connection failure: "+errText(at.err))
	case outRefused, outReset:
		s.answer(w, st, http.StatusServiceUnavailable, FailureReset,
			"upstream connect error or disconnect/reset before headers: service "+strconv.Quote(s.name)+
				": "+at.oc.String()+": "+errText(at.err))
	case outTryTimeout, outTimeout:
		rec.TimedOut = true
		s.answer(w, st, http.StatusGatewayTimeout, FailureTimeout,
			"upstream request timeout: service "+strconv.Quote(s.name))
	case outIdle:
		rec.TimedOut = true
		s.answer(w, st, http.StatusGatewayTimeout, FailureIdle,
			"upstream idle timeout: service "+strconv.Quote(s.name))
	case outOverflow:
		s.overflows.Add(1)
		rec.BreakerOpen = true
		msg := "upstream overflow: service " + strconv.Quote(s.name) + ": "
		if pol.h2 {
			msg += strconv.Itoa(pol.Breaker.MaxConnections) + " connections are open (circuit breaker MaxConnections)"
		} else {
			msg += "every connection is busy and " + strconv.Itoa(pol.Breaker.MaxPendingRequests) +
				" requests wait for one (circuit breaker MaxPendingRequests)"
		}
		s.answer(w, st, http.StatusServiceUnavailable, FailureOverflow, msg)
	case outClientGone:
		rec.Failure = FailureClientClosed
	}
}

// attempt is one try of a request on one endpoint.
type attempt struct {
	ep          *endpoint
	oc          outcome
	err         error
	resp        *http.Response
	status      int // resp's status, 0 without a response
	grpc        int // grpc-status of a headers-only response; -1 when none
	finalStatus int // what outlier detection is told at the end
	reported    int // the status told at the response headers, 0 if none
	headersIn   time.Duration
	sent        bool // handed to the transport: the endpoint's health is at stake
	started     bool // counted in ep.active
	slot        bool // holds an HTTP/1.1 connection slot
	url         url.URL
	body        *attemptBody
	cancel      context.CancelCauseFunc // per-try context; nil without per-try timeout
	timer       *time.Timer
}

// try sends r to ep once and waits for the response headers.
func (s *service) try(ctx context.Context, r *http.Request, ep *endpoint, pol *policy, up *upstream,
	body *replayBody) *attempt {
	at := &attempt{ep: ep, grpc: -1}
	actx := ctx
	if d := pol.Retry.PerTryTimeout; d > 0 {
		actx, at.cancel = context.WithCancelCause(ctx)
		cancel := at.cancel
		at.timer = time.AfterFunc(d, func() { cancel(errPerTryTimeout) })
	}
	if !pol.h2 && pol.Breaker.MaxConnections > 0 {
		if err := s.slots.acquire(actx, pol.Breaker.MaxConnections, pol.Breaker.MaxPendingRequests); err != nil {
			at.err = err
			at.oc = classify(err, ctx, actx)
			return at
		}
		at.slot = true
	}
	out := r.WithContext(actx)
	at.url = *r.URL
	at.url.Scheme, at.url.Host = pol.scheme, ep.Addr
	out.URL = &at.url
	out.RequestURI = ""
	out.Close = false
	out.GetBody = nil
	out.Body = nil
	if body != nil {
		at.body = body.attempt()
		out.Body = at.body
	}
	ep.active.Add(1)
	at.started, at.sent = true, true
	sent := time.Now()
	resp, err := up.roundTrip(out)
	at.headersIn = time.Since(sent)
	if err == nil && at.timer != nil && !at.timer.Stop() {
		// The per-try timeout passed as the headers came: its cancel
		// ends the body anyway.
		resp.Body.Close()
		resp, err = nil, errPerTryTimeout
	}
	if err != nil {
		at.err = err
		at.oc = classify(err, ctx, actx)
		return at
	}
	at.resp, at.oc, at.status = resp, outResponse, resp.StatusCode
	if v := resp.Header["Grpc-Status"]; len(v) > 0 {
		if code, err := strconv.Atoi(v[0]); err == nil {
			at.grpc = code
		}
	}
	return at
}

// endAttempt releases what an attempt holds. An abandoned response's body
// is closed unread (its HTTP/1.1 connection is not reused): draining it
// could wait on an endpoint that never sends it.
func (s *service) endAttempt(at *attempt, pol *policy) {
	if at.resp != nil {
		at.resp.Body.Close()
		at.resp = nil
	}
	if at.body != nil {
		at.body.kill()
	}
	if at.cancel != nil {
		at.timer.Stop()
		at.cancel(nil)
	}
	if at.slot {
		s.slots.release(pol.Breaker.MaxConnections)
		at.slot = false
	}
	if at.started {
		at.ep.active.Add(-1)
		at.started = false
	}
}

// forward copies the endpoint's response to the client: headers without
// hop-by-hop ones, the body with a pooled buffer (flushed after every
// read for streams), then the trailers.
func (s *service) forward(ctx context.Context, w http.ResponseWriter, st *reqState, at *attempt,
	pol *policy, idle *idleWatch) {
	rec := &st.rec
	resp := at.resp
	rec.Status = resp.StatusCode
	rec.TargetTime = at.headersIn
	rec.GRPCStatus = at.grpc
	idle.touch()
	removeHopHeaders(resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	for k := range resp.Trailer {
		dst["Trailer"] = append(dst["Trailer"], k)
	}
	// Streams (gRPC, server-sent events, bodies of unknown length) are
	// flushed after every read. A gRPC answer with grpc-status in its
	// headers is trailers-only: it must stay one HEADERS frame with
	// END_STREAM, so it is not flushed.
	ct := firstValue(resp.Header, "Content-Type")
	grpcBody := at.grpc < 0 && strings.HasPrefix(ct, "application/grpc")
	stream := at.grpc < 0 && (resp.ContentLength == -1 || grpcBody || strings.HasPrefix(ct, "text/event-stream"))
	if !grpcBody {
		// The status is known: outlier detection hears of it now, as
		// Envoy's does, not after a long body. A gRPC body's status comes
		// in its trailers.
		s.report(at.ep, at.finalStatus, pol)
		at.reported = at.finalStatus
	}
	w.WriteHeader(resp.StatusCode)
	var fl http.Flusher
	if stream {
		fl, _ = w.(http.Flusher)
		if fl != nil && resp.ContentLength != 0 {
			fl.Flush()
		}
	}
	n, rerr, werr := s.p.copyBody(w, resp.Body, fl, idle)
	rec.BytesOut = n
	switch {
	case werr != nil:
		rec.Failure = FailureClientClosed
		return
	case rerr != nil:
		switch oc := ctxOutcome(ctx); {
		case ctx.Err() == nil:
			rec.Failure = FailureIncomplete
			at.finalStatus = statusReset
		case oc == outTimeout:
			rec.Failure, rec.TimedOut = FailureTimeout, true
		case oc == outIdle:
			rec.Failure, rec.TimedOut = FailureIdle, true
		default:
			rec.Failure = FailureClientClosed
		}
		s.log.Debug("response body broken", "endpoint", at.ep.key, "err", rerr)
		st.abort = rec.Failure != FailureClientClosed
		return
	}
	// Trailers arrive with the end of the body; TrailerPrefix sends them
	// whether announced or not.
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	if v := resp.Trailer["Grpc-Status"]; len(v) > 0 {
		if code, err := strconv.Atoi(v[0]); err == nil {
			rec.GRPCStatus = code
			if at.status < 500 {
				at.finalStatus = grpcHTTPStatus(code)
			}
		}
	}
}

// copyBody copies src to w with a pooled buffer, flushing after every
// write when fl is set. It returns the bytes written, a read error other
// than EOF, and a write error.
func (p *Proxy) copyBody(w io.Writer, src io.Reader, fl http.Flusher, idle *idleWatch) (n int64, rerr, werr error) {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	for {
		nr, err := src.Read(buf)
		if nr > 0 {
			idle.touch()
			nw, err := w.Write(buf[:nr])
			n += int64(nw)
			if err != nil {
				return n, nil, err
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// answer writes a response the proxy makes itself. gRPC calls get what
// gRPC clients understand, as Envoy's local replies do: HTTP 200 with
// grpc-status UNAVAILABLE (for 503), DEADLINE_EXCEEDED (504) or
// UNIMPLEMENTED, and the text in grpc-message.
func (s *service) answer(w http.ResponseWriter, st *reqState, status int, f Failure, msg string) {
	rec := &st.rec
	rec.Generated, rec.Failure = true, f
	h := w.Header()
	if f == FailureOverflow {
		h["X-Trellis-Overloaded"] = []string{"true"}
	}
	if st.grpc {
		code := 14 // UNAVAILABLE
		switch status {
		case http.StatusGatewayTimeout:
			code = 4 // DEADLINE_EXCEEDED
		case http.StatusMethodNotAllowed:
			code = 12 // UNIMPLEMENTED
		}
		h["Content-Type"] = []string{"application/grpc"}
		h["Grpc-Status"] = []string{strconv.Itoa(code)}
		h["Grpc-Message"] = []string{grpcMessage(msg)}
		w.WriteHeader(http.StatusOK)
		rec.Status, rec.GRPCStatus = http.StatusOK, code
		return
	}
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	n, _ := io.WriteString(w, msg+"\n")
	rec.Status, rec.BytesOut = status, int64(n)
}

// grpcMessage percent-encodes msg for grpc-message (gRPC's HTTP/2 spec).
func grpcMessage(msg string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
