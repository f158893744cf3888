package egress

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/rawio"
)

// Circuit breaking. Three limits, all per service and fail-fast:
//
//   - MaxRequests: service.active, the requests in flight, is checked when
//     a request arrives (http.go).
//   - MaxConnections and MaxPendingRequests on HTTP/1.1: an attempt holds
//     one of MaxConnections slots of the slotGate from before it is sent
//     until its response is done, since an HTTP/1.1 connection carries one
//     request at a time. An attempt that finds every slot taken waits for
//     one, as a pending request; past MaxPendingRequests waiting ones it
//     fails. Go's transport keeps at most MaxConnections idle connections,
//     so open connections stay near the cap.
//   - MaxConnections on HTTP/2 and TCP: dial refuses a connection past the
//     cap (connCount counts open connections of the service).

// slotGate is a counting semaphore with a bounded FIFO of waiters.
type slotGate struct {
	mu      sync.Mutex
	busy    int
	waiters []chan struct{}
}

// acquire takes a slot, waiting while max are busy (max <= 0: no limit).
// It fails with errOverflow at once when maxPending others already wait
// (maxPending <= 0: no limit), and with ctx's error when ctx ends first.
// It allocates only when it has to wait.
func (g *slotGate) acquire(ctx context.Context, max, maxPending int) error {
	g.mu.Lock()
	if max <= 0 || g.busy < max {
		g.busy++
		g.mu.Unlock()
		return nil
	}
	if maxPending > 0 && len(g.waiters) >= maxPending {
		g.mu.Unlock()
		return errOverflow
	}
	ch := make(chan struct{})
	g.waiters = append(g.waiters, ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil // the releaser handed its slot over
	case <-ctx.Done():
		g.mu.Lock()
		for i, w := range g.waiters {
			if w == ch {
				g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
				g.mu.Unlock()
				return context.Cause(ctx)
			}
		}
		g.mu.Unlock()
		// Handed a slot while giving up: pass it on.
		g.release(max)
		return context.Cause(ctx)
	}
}

// tryAcquire takes a slot if one is free, without waiting (max <= 0: no
// limit).
func (g *slotGate) tryAcquire(max int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if max <= 0 || g.busy < max {
		g.busy++
		return true
	}
	return false
}

// release gives a slot back, or hands it to the first waiter when the
// limit (which may have changed since) allows.
func (g *slotGate) release(max int) {
	g.mu.Lock()
	if len(g.waiters) > 0 && (max <= 0 || g.busy <= max) {
		ch := g.waiters[0]
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
		close(ch)
	} else {
		g.busy--
	}
	g.mu.Unlock()
}

// pending is the number of waiters.
func (g *slotGate) pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiters)
}

// dial connects to addr for the service: TCP, then TLS when the policy
// has it. Failures are *connectError; a connection past MaxConnections is
// errOverflow when refuse is set (HTTP/2, TCP), and otherwise first makes
// the HTTP/1.1 pool close its idle connections (the slot gate already
// bounds the busy ones). The returned connection gives its count back when
// closed, as it does to the open-connection count of up, the transport
// that dials it; a dial on a retired transport wakes its sweeps. For TCP
// services (up nil) the raw *net.TCPConn is returned so that copies
// between it and the client splice; the caller then calls
// s.connCount.Add(-1) itself.
func (s *service) dial(ctx context.Context, addr string, pol *policy, refuse bool, up *upstream) (net.Conn, error) {
	if max := int64(pol.Breaker.MaxConnections); max > 0 && s.connCount.Load() >= max {
		if refuse {
			return nil, errOverflow
		}
		if cur := s.up.Load(); cur != nil {
			cur.closeIdle()
		}
	}
	s.connCount.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.p.dialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		s.connCount.Add(-1)
		return nil, &connectError{addr: addr, err: err}
	}
	var c net.Conn = raw
	wrap := up != nil
	if wrap {
		// HTTP connections read and write with raw system calls
		// (rawio); TCP ones splice.
		up.open.Add(1)
		c = newCountedConn(rawio.Wrap(raw), &s.connCount, &up.open)
		if r := up.retired.Load(); r != nil {
			r.wake()
		}
	}
	if pol.tls == nil {
		return c, nil
	}
	cfg := pol.tls
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		if !wrap {
			s.connCount.Add(-1)
		}
		return nil, &connectError{addr: addr, err: err}
	}
	if wrap && !pol.h2 {
		// HTTP/2 transports need the *tls.Conn itself, for its ALPN.
		return &refusalConn{Conn: tc, addr: addr}, nil
	}
	return tc, nil
}

// newCountedConn counts c against its service (count) and its transport
// (own). Over a raw connection it keeps the connection's WriteRead, so
// that the fast path's h1wire.WriteFill can use it (countedRawConn).
func newCountedConn(c net.Conn, count, own *atomic.Int64) net.Conn {
	cc := &countedConn{Conn: c, count: count, own: own}
	if rc, ok := c.(*rawio.Conn); ok {
		return &countedRawConn{countedConn: cc, raw: rc}
	}
	return cc
}

// countedRawConn is a countedConn over a rawio.Conn.
type countedRawConn struct {
	*countedConn
	raw *rawio.Conn
}

// WriteRead is rawio.Conn's.
func (c *countedRawConn) WriteRead(p, buf []byte) (int, error) { return c.raw.WriteRead(p, buf) }

// countedConn gives its service's and its transport's connection counts
// back once, on Close.
type countedConn struct {
	net.Conn
	count, own *atomic.Int64
	closed     atomic.Bool
}

// Unwrap lets connprobe reach the socket.
func (c *countedConn) Unwrap() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.count.Add(-1)
		c.own.Add(-1)
	}
	return c.Conn.Close()
}
