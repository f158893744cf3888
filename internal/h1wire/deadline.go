package h1wire

import (
	"io"
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
	w.arm()
	return w.C.Write(p)
}

// arm sets the write deadline for a write starting now.
func (w *DeadlineWriter) arm() {
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
}

// writeReader is a connection that can write a request and read its
// answer without the read that would find nothing in between
// (rawio.Conn).
type writeReader interface {
	WriteRead(p, buf []byte) (int, error)
}

// CanWriteRead reports whether c makes WriteFill one write and one read,
// checking first that the connection is idle (rawio.Conn): a pool need
// not probe a connection it uses that way.
func CanWriteRead(c net.Conn) bool {
	_, ok := c.(writeReader)
	return ok
}

// WriteFill writes p through w (whose connection is b's), then reads once
// into the buffer as Fill does: what the peer answers. On a connection
// that can (CanWriteRead) this is one write and one read, the wait for the
// answer armed before the write, and a connection that had anything to
// read before (a close, a stray byte) fails with rawio.ErrNotIdle, nothing
// written; on any other it is w.Write then Fill, unchecked. It is for a
// whole request on a connection whose previous answer was read to its
// end; with bytes still buffered it writes and returns.
func (b *Buf) WriteFill(w *DeadlineWriter, p []byte) error {
	wr, ok := b.C.(writeReader)
	if !ok || b.Buffered() > 0 {
		if _, err := w.Write(p); err != nil {
			return err
		}
		if b.Buffered() > 0 {
			return nil
		}
		return b.Fill(len(b.B))
	}
	b.R, b.W = 0, 0
	w.arm()
	n, err := wr.WriteRead(p, b.B)
	b.W = n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
