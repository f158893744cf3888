package h1wire

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

// ArmRead makes a read starting at now time out no sooner than d later
// (and no later than d + d/8).
func (b *Buf) ArmRead(now time.Time, d time.Duration) {
	want := now.Add(d)
	if b.Until.Before(want) || b.Until.After(want.Add(d/8)) {
		b.Until = want.Add(d / 8)
		_ = b.C.SetReadDeadline(b.Until)
	}
}

// ClearDeadline lets reads block for ever (an idle client connection:
// its idle timer closes it).
func (b *Buf) ClearDeadline() {
	if !b.Until.IsZero() {
		_ = b.C.SetReadDeadline(time.Time{})
		b.Until = time.Time{}
	}
}

// BodyDeadline arms the read deadline of a body read about to block: the
// idle timeout from now, or none.
func (b *Buf) BodyDeadline() {
	if b.Idle > 0 {
		b.ArmRead(time.Now(), b.Idle)
	} else {
		b.ClearDeadline()
	}
}

// DeadlineWriter bounds every write to a connection: a peer that stops
// reading for d fails the write instead of holding the connection (and a
// target connection) for ever. The deadline is checked only when bytes go
// out, so the pauses of a stream between writes are not limited.
type DeadlineWriter struct {
	C     net.Conn
	D     time.Duration
	until time.Time // the write deadline armed on c
	// Now is a clock reading the caller has just taken, used by the next
	// write instead of a new one; the caller clears it after the write.
	Now time.Time
}

func (w *DeadlineWriter) Write(p []byte) (int, error) {
	if w.D > 0 {
		now := w.Now
		if now.IsZero() {
			now = time.Now()
		}
		if want := now.Add(w.D); w.until.Before(want) || w.until.After(want.Add(w.D/8)) {
			w.until = want.Add(w.D / 8)
			_ = w.C.SetWriteDeadline(w.until)
		}
	}
	return w.C.Write(p)
}
