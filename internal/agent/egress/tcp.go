package egress

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// TCP proxying. A client connection gets an endpoint by least connections
// with the power of two choices; a failed connect is retried on another
// endpoint (when On allows, up to NumRetries), after which the client's
// connection is closed. Then bytes are copied both ways with io.Copy
// between the two *net.TCPConn, which the kernel splices, and each
// direction's end is passed on as a half-close. When either side is TLS
// (a ListenTLS listener, or Policy.TLS toward endpoints) nothing can be
// spliced: the bytes go through pooled buffers, and a half-close toward a
// TLS side is its close_notify alert (tls.Conn.CloseWrite).
//
// The idle timeout cannot count bytes inside splice, so it works by
// windows: each direction's read deadline is a quarter of the timeout
// away; when it passes, the copy returns with what it moved, and the two
// directions meet to decide: if neither moved a byte for idleWindows
// windows in a row, the stream is idle and both connections close. A
// stream closes between one and one and a quarter idle timeouts after its
// last byte. A direction that waits at the meeting longer than a window
// (the other is stuck in a write, so it is not idle) goes on.

// idleWindows is the number of quiet windows that make a stream idle.
const idleWindows = 4

// tcpStream is one proxied TCP connection.
type tcpStream struct {
	s      *service
	raw    *net.TCPConn // the client's connection
	client net.Conn     // what the client's bytes are copied with: raw, or tls
	tls    *tls.Conn    // the TLS server side of raw on a ListenTLS listener; else nil
	up     net.Conn
	start  time.Time
	once   sync.Once

	mu     sync.Mutex // guards the meeting state below and up
	window time.Duration
	quiet  int      // consecutive quiet windows
	moved  [2]bool  // direction moved bytes in the current window
	seen   [2]bool  // direction reached the current window's end
	done   [2]bool  // direction finished (EOF or error)
	meet   *meeting // the current window's decision
	closed bool
}

// meeting is one window's decision, published by closing ch.
type meeting struct {
	ch   chan struct{}
	idle bool
}

// newTCPStream makes the stream of the client connection c; tc is c's TLS
// server side on a TLS listener, nil otherwise.
func newTCPStream(s *service, c *net.TCPConn, tc *tls.Conn, start time.Time) *tcpStream {
	t := &tcpStream{s: s, raw: c, client: c, start: start, meet: &meeting{ch: make(chan struct{})}}
	if tc != nil {
		t.client, t.tls = tc, tc
	}
	return t
}

// serve completes the TLS handshake if any, connects to an endpoint and
// copies until both directions end.
func (t *tcpStream) serve(pol *policy) {
	s := t.s
	p := s.p
	rec := Record{Kind: KindConnClose, Service: s.name, Protocol: TCP, Client: t.raw.RemoteAddr().String(),
		Start: t.start, GRPCStatus: -1}
	defer func() {
		t.close()
		p.removeTCP(t)
		s.conns.Add(-1)
		rec.Duration = time.Since(t.start)
		if p.obs != nil {
			p.obs.Observe(&rec)
		}
	}()
	if t.tls != nil {
		peer, ok := s.handshake(t.tls, t.raw)
		if !ok {
			rec.Failure = FailureTLSHandshake
			return
		}
		rec.PeerURI = peer
	}
	s.requests.Add(1)

	var tried triedSet
	for n := 0; ; n++ {
		ep, allEjected := s.eps.Load().pick(p.now(), &tried)
		if ep == nil {
			rec.Failure = FailureNoEndpoints
			s.log.Debug("no endpoints for a TCP connection")
			return
		}
		rec.AllEjected = rec.AllEjected || allEjected
		rec.Endpoint, rec.EndpointAddr = ep.key, ep.Addr
		tried.add(ep)
		sent := time.Now()
		up, err := s.dial(p.ctx, ep.Addr, pol, true, nil)
		if err == nil {
			rec.TargetTime = time.Since(sent)
			s.report(ep, 200, pol)
			t.mu.Lock()
			t.up = up
			closed := t.closed
			t.mu.Unlock()
			if closed { // Close cut the stream while it connected
				up.Close()
				s.connCount.Add(-1)
				rec.Failure = FailureClientClosed
				return
			}
			ep.active.Add(1)
			defer ep.active.Add(-1)
			break
		}
		if errors.Is(err, errOverflow) {
			s.overflows.Add(1)
			rec.Failure, rec.BreakerOpen = FailureOverflow, true
			return
		}
		s.report(ep, statusConnectFailure, pol)
		s.log.Debug("endpoint connect failed", "endpoint", ep.key, "err", err)
		const connectConditions = RetryConnectFailure | Retry5xx | RetryGatewayError | RetryReset
		if n >= pol.Retry.NumRetries || pol.Retry.On&connectConditions == 0 || p.ctx.Err() != nil {
			rec.Failure = FailureConnect
			return
		}
		if !backoff(p.ctx, n, time.Time{}) {
			rec.Failure = FailureConnect
			return
		}
		rec.Retries++
		s.retries.Add(1)
	}
	defer s.connCount.Add(-1)

	var toUp, toClient int64
	var idleUp, idleClient bool
	if pol.IdleTimeout > 0 {
		t.window = pol.IdleTimeout / idleWindows
		deadline := time.Now().Add(t.window)
		t.client.SetReadDeadline(deadline)
		t.up.SetReadDeadline(deadline)
	}
	var wg sync.WaitGroup
	wg.Go(func() { toUp, idleUp = t.copy(0, t.up, t.client) })
	toClient, idleClient = t.copy(1, t.client, t.up)
	wg.Wait()
	rec.BytesIn, rec.BytesOut = toUp, toClient
	if idleUp || idleClient {
		rec.Failure, rec.TimedOut = FailureIdle, true
	}
}

// copy moves src's bytes to dst until src ends, then half-closes dst.
// Direction i is 0 (client to endpoint) or 1. It returns the bytes moved
// and whether the stream ended idle.
func (t *tcpStream) copy(i int, dst, src net.Conn) (total int64, idle bool) {
	for {
		n, err := t.copyOnce(dst, src)
		total += n
		if err == nil { // EOF: pass the half-close on
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return total, t.finish(i, n > 0)
		}
		if t.window == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.close() // a broken side breaks the stream
			return total, t.finish(i, n > 0)
		}
		if t.windowEnd(i, n > 0) {
			t.close()
			return total, true
		}
		src.SetReadDeadline(time.Now().Add(t.window))
	}
}

// copyOnce copies src to dst until src ends, fails or passes its read
// deadline. Between two *net.TCPConn io.Copy splices in the kernel; with
// TLS on either side it copies through a pooled buffer, where io.Copy
// would allocate one per call (through the TCP side's ReadFrom or WriteTo).
func (t *tcpStream) copyOnce(dst, src net.Conn) (int64, error) {
	_, dstTCP := dst.(*net.TCPConn)
	_, srcTCP := src.(*net.TCPConn)
	if dstTCP && srcTCP {
		return io.Copy(dst, src)
	}
	bufs := &t.s.p.bufs
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	return io.CopyBuffer(writerOnly{dst}, readerOnly{src}, *bp)
}

// writerOnly and readerOnly hide ReadFrom and WriteTo from io.CopyBuffer,
// which would otherwise ignore its buffer.
type (
	writerOnly struct{ io.Writer }
	readerOnly struct{ io.Reader }
)

// windowEnd records direction i at the end of a window and reports the
// stream idle: neither direction moved a byte for idleWindows windows.
func (t *tcpStream) windowEnd(i int, moved bool) bool {
	t.mu.Lock()
	t.moved[i] = t.moved[i] || moved
	t.seen[i] = true
	o := 1 - i
	if t.seen[o] || t.done[o] {
		idle := t.decideLocked()
		t.mu.Unlock()
		return idle
	}
	m := t.meet
	t.mu.Unlock()
	wait := time.NewTimer(t.window)
	defer wait.Stop()
	select {
	case <-m.ch:
		return m.idle
	case <-wait.C:
		// The other direction is stuck writing: not idle. This window's
		// decision is taken when it arrives.
		return false
	}
}

// finish records direction i's end; it reports whether a window decision
// it completes found the stream idle.
func (t *tcpStream) finish(i int, moved bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.moved[i] = t.moved[i] || moved
	t.done[i] = true
	if t.seen[1-i] {
		return t.decideLocked()
	}
	return false
}

// decideLocked closes the current window and publishes its decision.
func (t *tcpStream) decideLocked() bool {
	if t.moved[0] || t.moved[1] {
		t.quiet = 0
	} else {
		t.quiet++
	}
	m := t.meet
	m.idle = t.quiet >= idleWindows
	t.moved, t.seen = [2]bool{}, [2]bool{}
	t.meet = &meeting{ch: make(chan struct{})}
	close(m.ch)
	return m.idle
}

// close closes both connections; safe to call more than once and from
// Proxy.Close. The client's TCP connection is closed under its TLS: a
// close_notify now would tell the client that a cut stream ended cleanly
// (a clean end has sent one already, as the half-close).
func (t *tcpStream) close() {
	t.mu.Lock()
	t.closed = true
	up := t.up
	t.mu.Unlock()
	t.once.Do(func() { t.raw.Close() })
	if up != nil {
		up.Close()
	}
}
