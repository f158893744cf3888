package h2server

import "time"

// output is the connection's queue of encoded frames, guarded by the
// connection's mu. Whoever appends calls conn.flush afterwards; the first
// to find no write in progress writes the queue, then what was appended
// meanwhile, until it is empty. So the frames of every stream that
// answered while a write was under way leave in the next write: under
// load, responses share system calls.
type output struct {
	c       *conn
	buf     []byte
	spare   []byte
	writing bool
	ctrl    int // bytes of answers to the client's frames in buf, bounded by maxOutBuffer
	// gen counts the queues handed to the writer: an offset into buf is
	// valid while gen has not moved.
	gen uint64
}

func (o *output) init(c *conn) {
	o.c = c
	o.buf = make([]byte, 0, 16<<10)
	o.spare = make([]byte, 0, 16<<10)
}

func (o *output) appendSettings(settings [][2]uint32) {
	o.buf = appendFrameHeader(o.buf, 6*len(settings), frameSettings, 0, 0)
	for _, s := range settings {
		o.buf = append(o.buf, byte(s[0]>>8), byte(s[0]))
		o.buf = appendUint32(o.buf, s[1])
	}
}

func (o *output) appendWindowUpdate(stream, inc uint32) {
	if inc == 0 {
		return
	}
	o.buf = appendUint32(appendFrameHeader(o.buf, 4, frameWindowUpdate, 0, stream), inc)
}

func (o *output) appendRST(stream uint32, code errCode) {
	o.buf = appendUint32(appendFrameHeader(o.buf, 4, frameRSTStream, 0, stream), uint32(code))
}

func (o *output) appendGoAway(last uint32, code errCode) {
	o.buf = appendUint32(appendUint32(appendFrameHeader(o.buf, 8, frameGoAway, 0, 0), last), uint32(code))
}

// appendControl appends a frame the client's own frames call for (an
// acknowledgement), unless the client leaves too much unread.
func (o *output) appendControl(f func([]byte) []byte) bool {
	if o.ctrl > maxOutBuffer {
		return false
	}
	n := len(o.buf)
	o.buf = f(o.buf)
	o.ctrl += len(o.buf) - n
	return true
}

// flushAsync is the serve loop's flush: it must keep reading while a
// client that does not read holds a write, or it could not notice a flood
// of frames that ask for answers. Its frames are few (acknowledgements,
// window updates, resets), so a goroutine per write costs little. The
// goroutine is one of the connection's (wg); detached is for callers
// outside the serve loop, which must not add to wg while finish waits.
func (c *conn) flushAsync(detached bool) {
	c.mu.Lock()
	if c.out.writing || len(c.out.buf) == 0 || c.writeFailed != nil {
		c.mu.Unlock()
		return
	}
	c.out.writing = true
	c.mu.Unlock()
	if !detached {
		c.wg.Add(1)
	}
	go func() {
		if !detached {
			defer c.wg.Done()
		}
		c.mu.Lock()
		c.writeQueue()
	}()
}

// flush writes the queue unless another goroutine is writing it.
func (c *conn) flush() {
	c.mu.Lock()
	if c.out.writing || len(c.out.buf) == 0 || c.writeFailed != nil {
		c.mu.Unlock()
		return
	}
	c.out.writing = true
	c.writeQueue()
}

// writeQueue writes the queue until it is empty; called with mu held and
// out.writing set, it returns with mu released.
func (c *conn) writeQueue() {
	for len(c.out.buf) > 0 {
		b := c.out.buf
		c.out.buf = c.out.spare[:0]
		c.out.ctrl = 0
		c.out.gen++
		c.mu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(durationOr(c.srv.WriteTimeout, 30*time.Second)))
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.out.spare = b[:0]
		if err != nil {
			c.writeFailed = err
			c.closed = true
			c.out.buf = c.out.buf[:0]
			for _, s := range c.streams {
				s.abort(errConnClosed)
			}
			_ = c.nc.Close() // the serve loop ends
			break
		}
	}
	c.out.writing = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// waitRoom waits, with mu held, until s may queue n more bytes of DATA
// (or its headers when n is 0), flushing what is queued so that the
// client can answer with window updates. It returns how many bytes may go
// now, or an error when the stream or connection has ended.
func (c *conn) waitRoom(s *stream, n int) (int, error) {
	for {
		if s.reset {
			return 0, s.resetErr
		}
		if c.closed {
			return 0, errConnClosed
		}
		room := len(c.out.buf) < maxOutBuffer
		if room && n == 0 {
			return 0, nil
		}
		if room {
			// DATA frames stay at the default size whatever the client
			// allows, so that the queue never exceeds maxOutBuffer by more
			// than one small frame.
			m := min(int64(n), s.sendWindow, c.sendWindow, int64(defaultFrameSize))
			if m > 0 {
				return int(m), nil
			}
		}
		if len(c.out.buf) > 0 && !c.out.writing {
			c.mu.Unlock()
			c.flush()
			c.mu.Lock()
			continue
		}
		c.cond.Wait()
	}
}
