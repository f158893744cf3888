package proxy

import (
	"net"
	"time"
)

// Deadlines on the fast path are armed lazily. Setting one updates a
// runtime timer, which costs more than the rest of a small request's
// bookkeeping; so a deadline already armed is kept while it still gives
// the full time asked for, and a new one is armed with an eighth more. A
// timeout d therefore fires between d and d + d/8 after the operation
// starts, and a busy connection re-arms about every d/8.

// armRead makes a read starting at now time out no sooner than d later
// (and no later than d + d/8).
func (b *rbuf) armRead(now time.Time, d time.Duration) {
	want := now.Add(d)
	if b.until.Before(want) || b.until.After(want.Add(d/8)) {
		b.until = want.Add(d / 8)
		_ = b.c.SetReadDeadline(b.until)
	}
}

// clearDeadline lets reads block for ever (an idle client connection:
// its idle timer closes it).
func (b *rbuf) clearDeadline() {
	if !b.until.IsZero() {
		_ = b.c.SetReadDeadline(time.Time{})
		b.until = time.Time{}
	}
}

// bodyDeadline arms the read deadline of a body read about to block: the
// idle timeout from now, or none.
func (b *rbuf) bodyDeadline() {
	if b.idle > 0 {
		b.armRead(time.Now(), b.idle)
	} else {
		b.clearDeadline()
	}
}

// deadlineWriter bounds every write to a connection: a peer that stops
// reading for d fails the write instead of holding the connection (and a
// target connection) for ever. The deadline is checked only when bytes go
// out, so the pauses of a stream between writes are not limited.
type deadlineWriter struct {
	c     net.Conn
	d     time.Duration
	until time.Time // the write deadline armed on c
	// now is a clock reading the caller has just taken, used by the next
	// write instead of a new one; the caller clears it after the write.
	now time.Time
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.d > 0 {
		now := w.now
		if now.IsZero() {
			now = time.Now()
		}
		if want := now.Add(w.d); w.until.Before(want) || w.until.After(want.Add(w.d/8)) {
			w.until = want.Add(w.d / 8)
			_ = w.c.SetWriteDeadline(w.until)
		}
	}
	return w.c.Write(p)
}
