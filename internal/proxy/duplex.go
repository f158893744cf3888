package proxy

import (
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// A streamed request body goes to its target on a goroutine of its own
// while the request's goroutine waits for the answer and relays it: full
// duplex, as Go's transport and HAProxy do. HTTP/1.1 lets a target answer
// before it has read the whole body, and some stream their answer as they
// read (echo, transcoding, progress reports); a proxy that sent the whole
// body first would wait for a target that waits for it, once the sockets
// between them are full. Requests whose body goes in the head's write
// (small, arrived whole) do not need it.
//
// The body's side (bodyPump.run) only reads the client and writes the
// target connection; the answer's side only reads the target connection
// and writes the client. The answer's side settles the body before it
// decides whether the target connection goes back to its pool: a body
// still going when the answer has ended is cut (the connection closed,
// the client's reads stopped), since the target may still wait for the
// rest of it.

// bodySender is what a request path gives bodyPump: the body's copy, and
// how to stop its reads from the client from another goroutine.
type bodySender interface {
	// sendBody copies the request body to the target and returns the
	// payload bytes, a framing violation of the client's, the client's
	// read error and the target's write error.
	sendBody() (n int64, bad, rerr, werr error)
	// cutBody makes a read of the body waiting on the client, and every
	// later one, fail.
	cutBody()
}

// bodyGrace is how long an answer that has ended waits for its body to
// finish before cutting it: a target that answers as it reads (an echo)
// ends its answer just after the last of the body reached it, while the
// body's goroutine may not have returned yet.
const bodyGrace = 10 * time.Millisecond

// bodyPump runs one request body's copy. Its zero value is ready; it is
// pooled with the request path's state.
type bodyPump struct {
	uc  *upConn
	rht time.Duration
	s   bodySender
	log *slog.Logger

	// running is set from start to settle, on the answer's side.
	running bool

	mu       sync.Mutex
	headSeen bool // the answer's side has the response head
	cut      bool // the answer's side stopped the body
	done     chan struct{}

	// The body's outcome, read once done is closed.
	n               int64
	bad, rerr, werr error
}

// start sends the body on its own goroutine. The target connection's
// read deadline is the body's business until headArrived: none while the
// body goes, then rht from its end (ResponseHeaderTimeout counts from the
// end of the request, as in Go's transport).
func (p *bodyPump) start(uc *upConn, rht time.Duration, s bodySender, log *slog.Logger) {
	*p = bodyPump{uc: uc, rht: rht, s: s, log: log, running: true, done: make(chan struct{})}
	uc.in.ClearDeadline()
	go p.run()
}

// sendReadingHead starts the body toward uc and reads the response head
// (into rh; ends: scratch for its line ends) while it goes.
func (p *bodyPump) sendReadingHead(uc *upConn, s bodySender, log *slog.Logger, rh *h1wire.Head, ends []int32) ([]int32, error) {
	p.start(uc, uc.pool.up.rht, s, log)
	ends, _, err := uc.readHead(rh, ends, nil) // nothing is sent again once the body was read
	p.headArrived()
	return ends, err
}

func (p *bodyPump) run() {
	n, bad, rerr, werr := p.send()
	p.mu.Lock()
	p.n, p.bad, p.rerr, p.werr = n, bad, rerr, werr
	switch {
	case p.cut:
		// The answer's side closed the connection and waits for this.
	case bad != nil || rerr != nil:
		// The target has a request cut short: its connection is closed,
		// which ends the wait for an answer that may never come.
		_ = p.uc.c.Close()
	case !p.headSeen && p.rht > 0:
		// The body went whole, or the target stopped reading it (it may
		// have answered early): the head is due within rht.
		_ = p.uc.c.SetReadDeadline(time.Now().Add(p.rht))
	}
	p.mu.Unlock()
	close(p.done)
}

// send is the body's copy. A bug must cost one request, not the process,
// as on the request's own goroutine (serveFast, h2server): a panic is the
// body's failure.
func (p *bodyPump) send() (n int64, bad, rerr, werr error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("panic sending a request body", "panic", v, "stack", string(debug.Stack()))
			rerr = fmt.Errorf("panic sending a request body: %v", v)
		}
	}()
	return p.s.sendBody()
}

// going reports whether the body is still being sent, and failed
// whether it ended short of whole; it does not wait.
func (p *bodyPump) going() (going, failed bool) {
	select {
	case <-p.done:
		return false, p.bad != nil || p.rerr != nil || p.werr != nil
	default:
		return true, false
	}
}

// headArrived tells the body's side that the response head was read (or
// its read failed): from now on the answer's side sets the target
// connection's read deadlines. The deadline the body may have set is not
// uc.in.Until, so the next read arms its own.
func (p *bodyPump) headArrived() {
	p.mu.Lock()
	p.headSeen = true
	p.mu.Unlock()
	p.uc.in.Until = staleDeadline
}

// staleDeadline is a Buf's Until when a deadline may be armed on its
// connection that the Buf did not set: the next read re-arms (ArmRead) or
// clears it (ClearDeadline).
var staleDeadline = time.Unix(1, 0)

// bodyEnd is how a streamed body ended.
type bodyEnd uint8

const (
	bodyWhole       bodyEnd = iota // it all reached the target (or no body was streamed)
	bodyCut                        // the target stopped taking it, or the answer's side cut it
	bodyClientFault                // the client's read failed (it went away), or its framing was bad
)

// settle waits for the body, cutting it when it has not finished within
// bodyGrace, and tells how it ended: only a whole body leaves the target
// connection fit for another request. The target connection is closed
// when the body was cut. Without a body running it reports bodyWhole.
func (p *bodyPump) settle() bodyEnd {
	if !p.running {
		return bodyWhole
	}
	p.running = false
	select {
	case <-p.done:
	default:
		t := time.NewTimer(bodyGrace)
		select {
		case <-p.done:
		case <-t.C:
			p.mu.Lock()
			p.cut = true
			p.mu.Unlock()
			_ = p.uc.c.Close()
			p.s.cutBody()
			<-p.done
		}
		t.Stop()
	}
	p.done, p.uc, p.s, p.log = nil, nil, nil, nil
	switch {
	case p.cut || p.bad == nil && p.rerr == nil && p.werr != nil:
		return bodyCut
	case p.bad != nil || p.rerr != nil:
		return bodyClientFault
	}
	return bodyWhole
}

// cutReader is a connection whose reads another goroutine can end for
// good (stop): a read waiting fails with a timeout, and so does every
// later one, whatever deadline its reader sets meanwhile.
type cutReader struct {
	net.Conn
	mu      sync.Mutex
	stopped bool
}

func (c *cutReader) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil // the deadline in the past stays
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *cutReader) stop() {
	c.mu.Lock()
	c.stopped = true
	_ = c.Conn.SetReadDeadline(staleDeadline)
	c.mu.Unlock()
}
