package egress

import (
	"net"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/connprobe"
	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// fastPool keeps the idle keep-alive connections of the HTTP/1 fast path
// (fast.go) to a service's endpoints, per address, most recently used
// last. Connections idle for the policy's idle timeout are closed by one
// timer. Nothing reads an idle connection, so each reuse is probed first
// (connprobe), as h1client's and the gateway's pools do.
type fastPool struct {
	idle    time.Duration // 0: no limit
	maxIdle int

	mu     sync.Mutex
	conns  map[string][]*fastUp
	reaper *time.Timer
	armed  bool
}

// fastUp is a connection to an endpoint.
type fastUp struct {
	c      net.Conn
	addr   string
	probe  *connprobe.Prober
	in     h1wire.Buf
	idleAt time.Time
	// wr: the request goes out with h1wire's WriteFill, which checks the
	// connection is idle itself; the pool does not probe it.
	wr bool

	mu    sync.Mutex
	owner *h1ServerConn // the client connection whose request uses it (cutUp)
}

func newFastPool(idle time.Duration, maxIdle int) *fastPool {
	return &fastPool{idle: idle, maxIdle: maxIdle, conns: make(map[string][]*fastUp)}
}

// get takes an idle connection to addr, or returns nil. The connection's
// deadline becomes deadline (zero: none) before it is probed: the last
// request's may have passed. A connection whose request goes out with
// WriteFill (wr) is checked there instead, in the same call as the write.
func (p *fastPool) get(addr string, now, deadline time.Time) *fastUp {
	for {
		p.mu.Lock()
		list := p.conns[addr]
		n := len(list)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		uc := list[n-1]
		list[n-1] = nil
		p.conns[addr] = list[:n-1]
		p.mu.Unlock()
		if (p.idle <= 0 || now.Sub(uc.idleAt) < p.idle) && uc.in.Buffered() == 0 &&
			uc.c.SetDeadline(deadline) == nil && (uc.wr || uc.probe.Usable()) {
			return uc
		}
		_ = uc.c.Close()
	}
}

// put keeps a connection whose last response was read to its end.
func (p *fastPool) put(uc *fastUp, now time.Time) {
	uc.idleAt = now
	p.mu.Lock()
	list := p.conns[uc.addr]
	if len(list) >= p.maxIdle {
		p.mu.Unlock()
		_ = uc.c.Close()
		return
	}
	p.conns[uc.addr] = append(list, uc)
	if p.idle > 0 && !p.armed {
		p.armed = true
		if p.reaper == nil {
			p.reaper = time.AfterFunc(p.idle, p.reap)
		} else {
			p.reaper.Reset(p.idle)
		}
	}
	p.mu.Unlock()
}

// reap closes the connections idle for the idle timeout and re-arms for
// the next to expire.
func (p *fastPool) reap() {
	now := time.Now()
	var expired []*fastUp
	p.mu.Lock()
	next := time.Duration(-1)
	for addr, list := range p.conns {
		i := 0
		for i < len(list) && now.Sub(list[i].idleAt) >= p.idle {
			i++
		}
		expired = append(expired, list[:i]...)
		if i == len(list) {
			delete(p.conns, addr)
			continue
		}
		n := copy(list, list[i:])
		clear(list[n:])
		p.conns[addr] = list[:n]
		if d := p.idle - now.Sub(list[0].idleAt); next < 0 || d < next {
			next = d
		}
	}
	if next >= 0 {
		p.reaper.Reset(next)
	} else {
		p.armed = false
	}
	p.mu.Unlock()
	for _, uc := range expired {
		_ = uc.c.Close()
	}
}

// closeIdle closes the idle connections; connections in use come back
// when their response ends.
func (p *fastPool) closeIdle() {
	p.mu.Lock()
	conns := p.conns
	p.conns = make(map[string][]*fastUp)
	p.mu.Unlock()
	for _, list := range conns {
		for _, uc := range list {
			_ = uc.c.Close()
		}
	}
}
