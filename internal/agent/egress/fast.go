package egress

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/trellis-mesh/trellis/internal/connprobe"
	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// The HTTP/1 fast path serves the common request of an HTTP/1
// connection (plain text, or TLS that chose HTTP/1.1) without net/http's
// types: an HTTP/1.1 request in origin form whose head, and body if any
// (Content-Length), are already buffered, for a service whose policy
// allows it (policy.fast: HTTP1 endpoints, in plain text or TLS, no idle
// watchdog, no per-try timeout) and while a connection slot is free
// (MaxConnections). The head is parsed in place (h1wire.Head, with the
// framing guard's checks); the head sent to endpoints is built once into
// a buffer of the connection and sent again as it is on a retry; the
// endpoint's response head is parsed in place and its body relayed
// (h1wire.Relay) over the fast path's own keep-alive connections
// (fastPool). The per-request timeout is the endpoint connection's
// deadline rather than a context, and a shutdown or the client-gone
// watch cuts the wait with cutFast. Retries, outlier detection, the retry
// budget, MaxRequests, the Record and the generated answers are the
// net/http path's (http.go), whose functions it shares. Nothing is
// allocated per request in the steady state.
//
// Anything else (HTTP/1.0, Expect, a chunked or larger body, a '%' in
// the target, an empty Host, gRPC-Web, a head the guard's rules refuse or
// that is not all buffered yet) is read by http.ReadRequest as before, so
// a request the fast path leaves is answered exactly as it was.

// fastState is the fast path's state of one client connection.
type fastState struct {
	head, resp h1wire.Head
	ends       []int32
	relay      h1wire.Relay
	slot       int          // the MaxConnections a slot was taken under; 0: none held
	active     bool         // counted in service.active
	got1xx     bool         // the current exchange has read an informational answer
	out        []byte       // the head sent to endpoints, and the body
	xff        []byte       // scratch for the x-forwarded-for value
	body       int          // the request body's length
	req        http.Request // stands for the request for generated answers
	st         reqState
	at         attempt
	strs       struct{ method, path, host string }
	ip         string
}

const (
	fastUpBuf       = 4 << 10
	maxResponseHead = 1 << 20
)

// serveFast serves the request at the head of c's buffer if it can;
// handled is false when it left the request to http.ReadRequest. keep
// says whether the connection serves on.
func (c *h1ServerConn) serveFast(s *service, pol *policy, up *upstream) (handled, keep bool) {
	f := c.fast
	if f == nil {
		f = &fastState{ip: clientIP(c.remote)}
		f.req = http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		f.relay.Bufs = &s.p.bufs
		c.fast = f
	}
	b, _ := c.br.Peek(c.br.Buffered())
	var whole bool
	if f.ends, whole = h1wire.HeadEnds(b, f.ends[:0]); !whole {
		return false, false
	}
	hd := &f.head
	hd.Reset()
	if hd.ParseRequest(b, f.ends) != nil || hd.Info.Pri || hd.HTTP10 || hd.Info.TE > 0 ||
		hd.Info.CLValue > int64(len(b)-hd.Size) ||
		hd.HasExpect || len(hd.Host) == 0 || len(hd.Target) == 0 || hd.Target[0] != '/' ||
		bytes.IndexByte(hd.Target, '%') >= 0 || string(hd.Method) == http.MethodConnect ||
		!httpguts.ValidHostHeader(unsafe.String(unsafe.SliceData(hd.Host), len(hd.Host))) || grpcHead(hd) {
		return false, false
	}
	// A connection slot (MaxConnections) is held for the whole request;
	// a request that would wait for one takes the net/http path, which
	// waits as a pending request.
	if max := pol.Breaker.MaxConnections; max > 0 && !s.slots.tryAcquire(max) {
		return false, false
	}
	f.slot, f.active = pol.Breaker.MaxConnections, false
	defer c.fastRelease(s) // a panic (which costs the connection) leaks nothing
	path := hd.Target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	st := &f.st
	*st = reqState{}
	rec := &st.rec
	*rec = Record{
		Kind: KindRequest, Service: s.name, Protocol: pol.Protocol, Client: c.remote,
		Method: cachedString(&f.strs.method, hd.Method), Path: cachedString(&f.strs.path, path),
		Host: cachedString(&f.strs.host, hd.Host), Proto: "HTTP/1.1",
		Start: time.Now(), GRPCStatus: -1,
	}
	proto := "http"
	if c.tls != nil {
		rec.PeerURI = requestPeerURI(c.ctx)
		proto = "https"
	}
	f.req.Method, f.req.Close = rec.Method, hd.ConnClose
	isHead := rec.Method == http.MethodHead
	f.out = f.buildHead(f.out[:0], hd, rec, proto)
	// A body that came with the head goes out with it, and again on a
	// retry.
	f.body = int(hd.Info.CLValue)
	f.out = append(f.out, b[hd.Size:hd.Size+f.body]...)
	rec.BytesIn = int64(f.body)
	_, _ = c.br.Discard(hd.Size + f.body) // hd aliases the buffer no longer read from here on
	_ = c.nc.SetReadDeadline(time.Time{})

	s.requests.Add(1)
	active := s.active.Add(1)
	f.active = true
	keep = c.fastRequest(s, pol, up, active, isHead)
	// As on the net/http path: what the request held is given back, the
	// Record observed, and then the end of the answer goes out (to a
	// client that may be slow to read it).
	c.fastRelease(s)
	rec.Duration = time.Since(rec.Start)
	if s.p.obs != nil {
		s.p.obs.Observe(rec)
	}
	if c.bw.Flush() != nil {
		keep = false
	}
	return true, keep
}

// grpcHead reports whether a request is a gRPC call (over HTTP/1.1,
// gRPC-Web): those take the net/http path, which answers them in gRPC's
// terms and reads their status from the trailers.
func grpcHead(hd *h1wire.Head) bool {
	for i := range hd.Fields {
		fd := &hd.Fields[i]
		if len(fd.Name) == len("content-type") && bytes.EqualFold(fd.Name, []byte("content-type")) &&
			len(fd.Value) >= len("application/grpc") && string(fd.Value[:len("application/grpc")]) == "application/grpc" {
			return true
		}
	}
	return false
}

// fastRelease gives back what the request holds, once.
func (c *h1ServerConn) fastRelease(s *service) {
	f := c.fast
	if f.slot > 0 {
		s.slots.release(f.slot)
		f.slot = 0
	}
	if f.active {
		s.active.Add(-1)
		f.active = false
		if f.st.retrySlot {
			s.retrying.Add(-1)
			f.st.retrySlot = false
		}
	}
	f.relay.Release()
}

// fastRequest runs the attempts and answers; false when the connection
// must close.
func (c *h1ServerConn) fastRequest(s *service, pol *policy, up *upstream, active int64, isHead bool) bool {
	f := c.fast
	st := &f.st
	rec := &st.rec
	if max := pol.Breaker.MaxRequests; max > 0 && active > int64(max) {
		s.overflows.Add(1)
		rec.BreakerOpen = true
		return c.fastAnswer(s, func(w http.ResponseWriter) {
			s.answer(w, st, http.StatusServiceUnavailable, FailureOverflow,
				"upstream overflow: service "+strconv.Quote(s.name)+" has "+strconv.Itoa(max)+
					" requests in flight (circuit breaker MaxRequests)")
		})
	}
	var deadline time.Time
	if pol.PerRequestTimeout > 0 {
		deadline = rec.Start.Add(pol.PerRequestTimeout)
	}
	if f.body == 0 {
		// As on the net/http path, only a request without body is
		// watched: a client that half-closes after its body still
		// waits for the answer.
		c.armWatch()
	}
	at := &f.at
	var uc *fastUp
	for n := 0; ; n++ {
		ep, allEjected := s.eps.Load().pick(s.p.now(), &st.tried)
		if ep == nil {
			c.disarmWatch()
			return c.fastAnswer(s, func(w http.ResponseWriter) {
				s.answer(w, st, http.StatusServiceUnavailable, FailureNoEndpoints,
					"no healthy upstream: service "+strconv.Quote(s.name)+" has no endpoints")
			})
		}
		rec.AllEjected = rec.AllEjected || allEjected
		st.tried.add(ep)
		rec.Endpoint, rec.EndpointAddr = ep.key, ep.Addr
		*at = attempt{ep: ep, grpc: -1}
		uc = c.fastTry(s, pol, up, at, deadline)
		if at.oc == outTimeout || at.oc == outClientGone || !s.shouldRetry(st, at, pol, n, rec.Method, nil) {
			break
		}
		if uc != nil {
			// A response that is retried is dropped unread, with its
			// connection.
			c.unwatchUp(uc)
			_ = uc.c.Close()
			uc = nil
		}
		s.report(ep, at.healthStatus(), pol)
		s.endAttempt(at, pol)
		s.log.Debug("retrying", "endpoint", ep.key, "outcome", at.oc.String(), "err", at.err)
		if !backoff(c.ctx, n, deadline) {
			*at = attempt{oc: outClientGone, grpc: -1}
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				at.oc = outTimeout
			}
			break
		}
		rec.Retries++
		s.retries.Add(1)
	}
	at.finalStatus = at.healthStatus()
	keep := true
	if at.oc == outResponse {
		keep = c.fastForward(s, pol, up, uc, isHead, deadline)
	} else {
		c.disarmWatch()
		if at.oc == outClientGone {
			rec.Failure = FailureClientClosed
			keep = false
		} else {
			keep = c.fastAnswer(s, func(w http.ResponseWriter) { s.fail(w, st, at, pol) })
		}
	}
	if at.ep != nil && at.oc != outClientGone && at.finalStatus != at.reported {
		s.report(at.ep, at.finalStatus, pol)
	}
	s.endAttempt(at, pol)
	return keep && !c.gone.Load()
}

// fastAnswer writes an answer of the proxy's own with the connection's
// ResponseWriter, leaving its end in the buffer; false when the
// connection must close.
func (c *h1ServerConn) fastAnswer(s *service, write func(http.ResponseWriter)) bool {
	w := &c.w
	w.reset(&c.fast.req)
	write(w)
	return w.end(false) && !w.closeAfter
}

// fastTry sends the request head to at.ep and reads the response head.
// It returns the connection the response is on when at.oc is
// outResponse. A reused connection that fails before any byte of the
// response is replaced by a new one once, for an idempotent method, as
// h1client does.
func (c *h1ServerConn) fastTry(s *service, pol *policy, up *upstream, at *attempt, deadline time.Time) *fastUp {
	f := c.fast
	ep := at.ep
	uc := up.fast.get(ep.Addr, time.Now(), deadline)
	reused := uc != nil
	ep.active.Add(1)
	at.started, at.sent = true, true
	for {
		if uc == nil {
			conn, err := c.fastDial(s, pol, up, ep.Addr, deadline)
			if err != nil {
				at.err, at.oc = err, outConnect
				switch {
				case c.gone.Load() || c.ctx.Err() != nil:
					at.oc = outClientGone
				case !deadline.IsZero() && !time.Now().Before(deadline):
					at.oc = outTimeout
				}
				return nil
			}
			uc = &fastUp{c: conn, addr: ep.Addr, probe: connprobe.New(conn),
				in: h1wire.Buf{C: conn, B: make([]byte, fastUpBuf)}, wr: h1wire.CanWriteRead(conn)}
			_ = uc.c.SetDeadline(deadline)
		}
		c.watchUp(uc)
		var err error
		if c.gone.Load() || c.ctx.Err() != nil {
			// The client left, or the listener is closing, before this
			// connection could be cut (cutFast).
			err = net.ErrClosed
		}
		sent := time.Now()
		if err == nil {
			err = c.fastExchange(uc)
		}
		if err == nil {
			at.headersIn = time.Since(sent)
			at.oc, at.status = outResponse, f.resp.Status
			if v, i := f.resp.Next("Grpc-Status", 0); i >= 0 {
				if code, err := strconv.Atoi(v); err == nil {
					at.grpc = code
				}
			}
			return uc
		}
		c.unwatchUp(uc)
		_ = uc.c.Close()
		var ne net.Error
		var ce *connectError
		timeout := errors.As(err, &ne) && ne.Timeout()
		switch {
		case c.gone.Load() || c.ctx.Err() != nil:
			at.oc = outClientGone
		case timeout && !deadline.IsZero() && !time.Now().Before(deadline):
			at.oc = outTimeout
		case errors.Is(err, rawio.ErrNotIdle):
			// Closed by the endpoint, or holding a stray byte, before
			// anything was sent: any request goes on a new connection;
			// a new one that is not idle is the endpoint's fault.
			if reused {
				uc, reused = nil, false
				continue
			}
			at.oc = outConnect
		case errors.As(err, &ce) || refusedByTLS(err):
			// A TLS endpoint refused this agent's certificate after the
			// handshake (refusalConn): the request was not read.
			at.oc = outConnect
		case reused && !timeout && !f.got1xx && uc.in.Buffered() == 0 && f.body == 0 && idempotent(f.req.Method):
			uc, reused = nil, false
			continue
		default:
			at.oc = outReset
		}
		at.err = err
		return nil
	}
}

// cutFast ends the fast path's wait on its endpoint, if it is waiting:
// for the watch when the client has left, and for a shutdown whose time
// is up. The fast path checks the connection's state after publishing
// the connection it waits on, so a cut cannot fall between the two.
func (c *h1ServerConn) cutFast() {
	if uc := c.fastUp.Load(); uc != nil {
		c.cutUp(uc)
	}
}

// cutUp cuts uc while c still owns it: a cut that loaded uc as the
// request ended must not reach it once it is back in the pool, or taken
// by another request (its deadline in the past, that request would fail).
func (c *h1ServerConn) cutUp(uc *fastUp) {
	uc.mu.Lock()
	if uc.owner == c {
		_ = uc.c.SetDeadline(time.Unix(1, 0))
	}
	uc.mu.Unlock()
}

// watchUp publishes uc as the connection the fast path waits on, for
// cutFast.
func (c *h1ServerConn) watchUp(uc *fastUp) {
	uc.mu.Lock()
	uc.owner = c
	uc.mu.Unlock()
	c.fastUp.Store(uc)
}

// unwatchUp withdraws uc, before it is closed or goes back to its pool.
func (c *h1ServerConn) unwatchUp(uc *fastUp) {
	c.fastUp.Store(nil)
	uc.mu.Lock()
	uc.owner = nil
	uc.mu.Unlock()
}

// fastDial connects to addr within the per-request deadline.
func (c *h1ServerConn) fastDial(s *service, pol *policy, up *upstream, addr string, deadline time.Time) (net.Conn, error) {
	ctx := c.ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	return s.dial(ctx, addr, pol, false, up)
}

// fastExchange writes the request head on uc and reads the response head
// into c.fast.resp, skipping informational answers (at most four, as Go's
// client). The request goes out in one write and, on a raw connection,
// the answer's first bytes come in without a read in between that would
// find nothing (h1wire.WriteFill), after a check that the connection is
// idle (rawio.ErrNotIdle: nothing was sent). The per-request deadline set
// on uc bounds both.
func (c *h1ServerConn) fastExchange(uc *fastUp) error {
	f := c.fast
	f.got1xx = false
	var err error
	if uc.wr {
		w := h1wire.DeadlineWriter{C: uc.c}
		err = uc.in.WriteFill(&w, f.out)
	} else {
		_, err = uc.c.Write(f.out)
	}
	rh := &f.resp
	for n := 0; ; n++ {
		rh.Reset()
		if err == nil {
			f.ends, err = uc.in.HeadLines(f.ends[:0], maxResponseHead, false, nil)
		}
		if err == nil {
			err = rh.ParseResponse(uc.in.B[uc.in.R:], f.ends)
		}
		if err != nil {
			return err
		}
		if rh.Status >= 200 {
			return nil
		}
		if rh.Status == http.StatusSwitchingProtocols || n == 4 {
			return errors.New("unexpected informational response " + strconv.Itoa(rh.Status))
		}
		f.got1xx = true
		uc.in.R += rh.Size
	}
}

// Response body framings.
const (
	fastBodyNone = iota
	fastBodyLength
	fastBodyChunked
	fastBodyUntilClose
)

// fastForward relays the response on uc to the client: the head without
// hop-by-hop fields and with the framing the client needs, then the body,
// whose end may stay in the buffer (serveFast flushes it). uc goes back
// to the pool when the response ended cleanly. False when the client
// connection must close.
func (c *h1ServerConn) fastForward(s *service, pol *policy, up *upstream, uc *fastUp, isHead bool, deadline time.Time) bool {
	f := c.fast
	st := &f.st
	rec := &st.rec
	at := &f.at
	rh := &f.resp
	rec.Status, rec.TargetTime, rec.GRPCStatus = rh.Status, at.headersIn, at.grpc
	s.report(at.ep, at.finalStatus, pol)
	at.reported = at.finalStatus

	upKeep := !rh.ConnClose && (!rh.HTTP10 || rh.ConnKeepAlive)
	mode := fastBodyNone
	switch {
	case isHead || rh.Status == http.StatusNoContent || rh.Status == http.StatusNotModified:
	case rh.Chunked:
		mode = fastBodyChunked
	case rh.Length >= 0:
		mode = fastBodyLength
	default:
		mode, upKeep = fastBodyUntilClose, false
	}
	chunkOut := mode == fastBodyChunked || mode == fastBodyUntilClose
	closeAfter := f.req.Close || c.srv.draining.Load()

	w := c.bw
	f.relay.WriteResponseHead(w, rh, false, mode == fastBodyChunked, chunkOut)
	if !rh.HasDate {
		c.w.date.WriteField(w)
	}
	if chunkOut {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closeAfter {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	uc.in.R += rh.Size

	var n int64
	var bad, rerr, werr error
	switch mode {
	case fastBodyLength:
		n, rerr, werr = f.relay.CopyN(&uc.in, w, rh.Length, false)
	case fastBodyChunked:
		n, bad, rerr, werr = f.relay.CopyChunked(&uc.in, w, false, true, maxResponseHead)
	case fastBodyUntilClose:
		n, rerr, werr = f.relay.CopyN(&uc.in, w, -1, true)
		if rerr == nil && werr == nil {
			_, werr = w.WriteString("0\r\n\r\n")
		}
	}
	rec.BytesOut = n
	c.disarmWatch()
	c.unwatchUp(uc)
	switch {
	case werr != nil || c.gone.Load():
		_ = uc.c.Close()
		rec.Failure = FailureClientClosed
		return false
	case bad != nil || rerr != nil:
		_ = uc.c.Close()
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() && !deadline.IsZero() && !time.Now().Before(deadline) {
			rec.Failure, rec.TimedOut = FailureTimeout, true
		} else {
			rec.Failure = FailureIncomplete
			at.finalStatus = statusReset
		}
		s.log.Debug("response body broken", "endpoint", at.ep.key, "err", errors.Join(bad, rerr))
		return false // the client sees the response cut
	}
	if upKeep && uc.in.Buffered() == 0 {
		if len(uc.in.B) > 4*fastUpBuf {
			uc.in.B, uc.in.R, uc.in.W = make([]byte, fastUpBuf), 0, 0
		}
		up.fast.put(uc, time.Now())
	} else {
		_ = uc.c.Close()
	}
	return !closeAfter
}

// cachedString returns b as a string, reusing *cache when equal: the
// strings of a connection's records repeat from request to request.
func cachedString(cache *string, b []byte) string {
	if string(b) != *cache {
		*cache = string(b)
	}
	return *cache
}
