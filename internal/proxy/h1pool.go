package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/connprobe"
	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// h1Pool keeps the idle keep-alive HTTP/1.1 connections of the fast path
// to one target address. It is a stack under a mutex (the critical
// sections are a few loads and stores): the most recently used
// connection is reused first, so that the oldest ones are the ones the
// idle timeout closes. At most MaxIdleConnsPerTarget connections wait;
// one timer per pool closes those idle for the service's idle timeout.
//
// Nothing reads an idle connection, so every reuse is probed first
// (connprobe: a non-blocking peek): a target that closed the connection,
// or sent bytes nobody asked for (a stray response, a body after a HEAD
// answer), leaves something to read, and the connection is dropped rather
// than have those bytes taken for the next request's answer. A request
// that goes out in one write is not probed here: WriteFill makes the same
// peek inside the write call, after the poller's readiness was reset, and
// a connection found done then is replaced before anything was sent on
// it, whatever the method. A request without a body whose reused
// connection fails before any byte of the response (closed just after
// the probe or the write) is retried once on a new connection (see
// forward).
type h1Pool struct {
	addr string
	up   *upstream

	mu     sync.Mutex
	conns  []*upConn // idle, oldest first
	closed bool
	timer  *time.Timer
	armed  bool
	gen    uint64 // the last compilation that used the pool (upstream.prune)
}

// upConn is a connection to a target.
type upConn struct {
	c         net.Conn
	probe     *connprobe.Prober
	in        h1wire.Buf
	w         h1wire.DeadlineWriter
	pool      *h1Pool
	idleSince int64 // Engine.now() when it went idle
	// wr: WriteFill checks that the connection is idle before it writes
	// (h1wire.CanWriteRead).
	wr bool
}

// upstreamReadBuf is the initial read buffer of a target connection;
// response heads may grow it up to maxResponseHead.
const (
	upstreamReadBuf = 4 << 10
	maxResponseHead = 1 << 20
)

// get returns an idle connection, or nil when there is none. The
// connection is probed unless oneWrite says the whole request goes out
// with h1wire's WriteFill, which checks the connection itself (wr).
func (p *h1Pool) get(now int64, oneWrite bool) *upConn {
	idle := int64(p.up.idle)
	for {
		p.mu.Lock()
		n := len(p.conns)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		uc := p.conns[n-1]
		p.conns[n-1] = nil
		p.conns = p.conns[:n-1]
		p.mu.Unlock()
		age := now - uc.idleSince
		if age < idle && (oneWrite && uc.wr && uc.in.Buffered() == 0 || uc.alive()) {
			return uc
		}
		_ = uc.c.Close()
	}
}

// put returns a connection whose last response was read completely.
func (p *h1Pool) put(uc *upConn, now int64) {
	uc.idleSince = now
	p.mu.Lock()
	if p.closed || len(p.conns) >= p.up.maxIdle {
		p.mu.Unlock()
		_ = uc.c.Close()
		return
	}
	p.conns = append(p.conns, uc)
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.up.idle, p.reap)
		} else {
			p.timer.Reset(p.up.idle)
		}
	}
	p.mu.Unlock()
}

// reap closes the connections idle for the idle timeout and re-arms the
// timer for the next one to expire.
func (p *h1Pool) reap() {
	now := p.up.now()
	idle := int64(p.up.idle)
	p.mu.Lock()
	i := 0
	for i < len(p.conns) && now-p.conns[i].idleSince >= idle {
		i++
	}
	expired := make([]*upConn, i)
	copy(expired, p.conns[:i])
	n := copy(p.conns, p.conns[i:])
	clear(p.conns[n:])
	p.conns = p.conns[:n]
	if n > 0 && !p.closed {
		p.timer.Reset(time.Duration(idle - (now - p.conns[0].idleSince)))
	} else {
		p.armed = false
	}
	p.mu.Unlock()
	for _, uc := range expired {
		_ = uc.c.Close()
	}
}

// close closes the idle connections; connections in use are closed when
// they come back.
func (p *h1Pool) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	for _, uc := range conns {
		_ = uc.c.Close()
	}
}

// dial opens a new connection to the target, within DialTimeout.
func (p *h1Pool) dial() (*upConn, error) {
	c, err := p.up.dialer.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c = rawio.Wrap(c)
	uc := &upConn{c: c, pool: p, probe: connprobe.New(c), wr: h1wire.CanWriteRead(c)}
	uc.in = h1wire.Buf{C: c, B: make([]byte, upstreamReadBuf)}
	uc.w = h1wire.DeadlineWriter{C: c}
	return uc, nil
}

// alive probes an idle connection without blocking: a target that
// closed it has left an EOF (or a reset) to read; a live one nothing.
func (uc *upConn) alive() bool {
	return uc.in.Buffered() == 0 && uc.probe.Usable()
}
