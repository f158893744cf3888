package egress

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// MaxReplayBody is how much of a request body the proxy keeps to send it
// again on a retry (Envoy's per-request buffer limit plays this role). A
// request that has sent more than this to an endpoint is not retried; one
// that has sent less is, even if its body is longer, since the rest is
// still unread.
const MaxReplayBody = 64 << 10

// replayBody reads the client's request body for one attempt after
// another. It streams, never waiting for the whole body before sending
// (a gRPC client stream may not end until it gets answers), and records
// what it reads, up to MaxReplayBody, so that a retry starts from the
// first byte: a retry's attempt reads the record, then carries on with the
// client's body where the earlier attempt left it.
//
// An abandoned attempt's transport may still be reading when the next
// attempt starts. Reads of the client's body are serialised by readMu, and
// whatever an abandoned attempt read still goes into the record, so no
// byte is lost while the record has room.
type replayBody struct {
	src  io.ReadCloser
	idle *idleWatch

	readMu sync.Mutex // held across src.Read

	mu       sync.Mutex // guards the fields below
	rec      []byte     // bytes 0..len(rec) of the body, while !overflow
	n        int64      // bytes read from src
	overflow bool       // more than MaxReplayBody read: rec is gone
	eof      bool
	err      error // src's final error, io.EOF at the end
	finished bool  // the request is over: every read fails
}

func newReplayBody(src io.ReadCloser, contentLength int64, idle *idleWatch) *replayBody {
	b := &replayBody{src: src, idle: idle}
	if contentLength > 0 && contentLength <= MaxReplayBody {
		b.rec = make([]byte, 0, contentLength)
	}
	return b
}

// attempt returns the body reader of a new attempt, from the first byte.
func (b *replayBody) attempt() *attemptBody { return &attemptBody{b: b} }

// replayable reports whether a new attempt can still get every byte.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow
}

// total is the number of body bytes read from the client.
func (b *replayBody) total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// finish ends every attempt's reading: the client's body belongs to the
// request, which is over.
func (b *replayBody) finish() {
	b.mu.Lock()
	b.finished = true
	b.mu.Unlock()
}

// attemptBody is one attempt's request body.
type attemptBody struct {
	b    *replayBody
	off  int64 // the next byte this attempt reads
	dead atomic.Bool
}

// kill ends the attempt's reading; the transport gets errAttemptOver.
func (a *attemptBody) kill() { a.dead.Store(true) }

// Close is the transport's: it does not close the client's body, which a
// retry may still need.
func (a *attemptBody) Close() error {
	a.kill()
	return nil
}

func (a *attemptBody) Read(p []byte) (int, error) {
	b := a.b
	for {
		if a.dead.Load() {
			return 0, errAttemptOver
		}
		b.mu.Lock()
		switch {
		case b.finished:
			b.mu.Unlock()
			return 0, errAttemptOver
		case a.off < int64(len(b.rec)):
			n := copy(p, b.rec[a.off:])
			a.off += int64(n)
			b.mu.Unlock()
			return n, nil
		case a.off < b.n:
			// Read by an earlier attempt and not recorded.
			b.mu.Unlock()
			return 0, errBodyLost
		case b.eof:
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
		b.mu.Unlock()

		b.readMu.Lock()
		b.mu.Lock()
		behind := a.off < b.n || b.eof // another attempt read meanwhile
		b.mu.Unlock()
		if behind {
			b.readMu.Unlock()
			continue
		}
		n, err := b.src.Read(p)
		b.mu.Lock()
		if n > 0 {
			if !b.overflow && len(b.rec)+n <= MaxReplayBody {
				b.rec = append(b.rec, p[:n]...)
			} else {
				b.overflow, b.rec = true, nil
			}
			b.n += int64(n)
			a.off += int64(n)
		}
		if err != nil {
			b.eof, b.err = true, err
		}
		b.mu.Unlock()
		b.readMu.Unlock()
		if n > 0 {
			b.idle.touch()
			return n, nil // the error, if any, comes with the next read
		}
		return 0, err
	}
}

// idleWatch cuts a request whose exchange stays silent (no body byte
// either way, no response headers) for the idle timeout. Reads touch it
// with one atomic store; its timer wakes once per idle period and re-arms
// for the time left, so the hot path never resets a timer.
type idleWatch struct {
	p      *Proxy
	d      int64
	last   atomic.Int64 // proxy clock of the last activity
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func newIdleWatch(parent context.Context, d time.Duration, p *Proxy) (context.Context, *idleWatch) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &idleWatch{p: p, d: int64(d), cancel: cancel}
	w.last.Store(p.now())
	w.mu.Lock()
	w.timer = time.AfterFunc(d, w.check)
	w.mu.Unlock()
	return ctx, w
}

// touch notes activity; nil-safe.
func (w *idleWatch) touch() {
	if w != nil {
		w.last.Store(w.p.now())
	}
}

func (w *idleWatch) check() {
	quiet := w.p.now() - w.last.Load()
	if quiet >= w.d {
		w.cancel(errIdleTimeout)
		return
	}
	w.mu.Lock()
	if !w.stopped {
		w.timer.Reset(time.Duration(w.d - quiet))
	}
	w.mu.Unlock()
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(nil)
}
