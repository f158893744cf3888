// Package rawio reads and writes TCP connections with raw system calls,
// for the proxies' request paths.
//
// net.TCPConn's Read and Write enter the Go scheduler's system-call state
// around each read(2) and write(2). When the process was idle, entering it
// wakes the runtime's monitor thread (sysmon), which sleeps while every P
// is idle: a futex wake-up on the request's path, and a thread that then
// runs for a while on the other core. A proxy hop at a moderate rate finds
// the process idle twice per request (when the request comes and when the
// answer does), and those wake-ups were half of its context switches.
//
// The sockets are non-blocking, so their reads and writes never block in
// the kernel; Conn makes them as raw system calls (syscall.RawSyscall)
// inside syscall.RawConn's Read and Write, which wait for readiness through
// the runtime's poller as net.Conn does and honour the same deadlines.
// Everything else (deadlines, Close, CloseWrite, SyscallConn, addresses)
// is the embedded *net.TCPConn's, ReadFrom and WriteTo included: io.Copy
// between two TCP connections still splices.
//
// A raw call keeps its goroutine's P for its whole length. A socket call
// never waits, but a large write on loopback does the receiver's work in
// the kernel too, up to about a millisecond, during which that P runs
// nothing else and a garbage collection waits to stop the world.
//
// WriteRead serves a proxy's request and answer: the request is written
// inside the raw read, after the poller's readiness has been reset, and
// the goroutine then waits for the answer without first trying a read
// that would find nothing (one system call less per exchange).
//
// The race detector is told what the raw calls do (race.go); builds with
// the memory or address sanitizer use net.TCPConn's calls instead.
//
// Measured on the gateway's HTTP/1.1 path (BENCHMARKS.md): context
// switches per request at 1,000 req/s 5.2 → 2.4, CPU per request under
// load about 15 % lower.
package rawio

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/trellis-mesh/trellis/internal/connprobe"
)

// Conn is a *net.TCPConn whose Read and Write are raw system calls. Like
// any net.Conn it may be read and written at the same time, by two
// goroutines; concurrent Reads (or Writes) are serialized.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu   sync.Mutex
	rp    []byte
	rn    int
	rerr  error
	rfunc func(uintptr) bool

	wmu   sync.Mutex
	wp    []byte
	wn    int
	werr  error
	wfunc func(uintptr) bool

	// WriteRead's, under both mutexes.
	blocked, checked bool
	wrfunc           func(uintptr) bool
	// Its idle check where raw calls are not made, under rmu.
	sc       syscall.RawConn // nil: the socket is out of reach
	idleOK   bool
	peekfunc func(uintptr) bool
}

// New returns tc with raw reads and writes. Should tc's descriptor be out
// of reach, its Read and Write are tc's own.
func New(tc *net.TCPConn) *Conn {
	c := &Conn{TCPConn: tc}
	if rc, err := tc.SyscallConn(); err == nil {
		c.sc = rc
		if supported {
			c.rc = rc
		}
	}
	c.rfunc, c.wfunc, c.wrfunc, c.peekfunc = c.read, c.write, c.writeRead, c.peek
	return c
}

// Wrap returns c with raw reads and writes when it is a *net.TCPConn, and
// c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return New(tc)
	}
	return c
}

// Unwrap returns the TCP connection, for code that looks for the socket
// under wrappers (connprobe).
func (c *Conn) Unwrap() net.Conn { return c.TCPConn }

// Read reads into p as net.Conn's Read does: it waits for data (or the
// read deadline), returns io.EOF at the end of the stream, and never
// returns 0 bytes with a nil error for a non-empty p.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 || c.rc == nil {
		return c.TCPConn.Read(p)
	}
	c.rmu.Lock()
	c.rp, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.rfunc)
	n := c.rn
	if err == nil {
		err = c.rerr
	} else {
		err = renameOp(err, "read")
	}
	c.rp, c.rerr = nil, nil
	c.rmu.Unlock()
	return n, err
}

// Write writes all of p, waiting for room (or the write deadline) as
// net.Conn's Write does.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 || c.rc == nil {
		// A zero-length write still reports a closed connection or a
		// deadline past, as net.TCPConn's does.
		return c.TCPConn.Write(p)
	}
	c.wmu.Lock()
	c.wp, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(c.wfunc)
	n := c.wn
	if err == nil {
		err = c.werr
	} else {
		err = renameOp(err, "write")
	}
	c.wp, c.werr = nil, nil
	c.wmu.Unlock()
	return n, err
}

// ErrNotIdle is WriteRead's error for a connection that had something to
// read before the write: bytes, the end of the stream, an error. Nothing
// was written.
var ErrNotIdle = errors.New("rawio: the connection is not idle; nothing was written")

// WriteRead writes all of p, then waits for the peer's answer and reads
// it into buf, as Write then Read do, but without the read that would
// find nothing between them: the wait for data is armed (the poller's
// readiness reset) before the write, so the answer's arrival cannot be
// missed, and the first read is the one that gets it. It is for a request
// and its answer on an idle connection, and checks that it is: a peek,
// after the reset and before the write, that finds anything to read (a
// stray byte, a close, a reset, whose readiness the reset has forgotten)
// fails the call with ErrNotIdle, nothing written. So a pool need not
// probe a connection it uses this way. The read deadline bounds the wait;
// a write that would block finishes as Write does, under the write
// deadline.
func (c *Conn) WriteRead(p, buf []byte) (int, error) {
	if c.rc == nil || len(p) == 0 || len(buf) == 0 {
		if err := c.idle(); err != nil {
			return 0, err
		}
		if _, err := c.Write(p); err != nil {
			return 0, err
		}
		return c.Read(buf)
	}
	c.wmu.Lock()
	c.wp, c.wn, c.werr = p, 0, nil
	c.rmu.Lock()
	c.rp, c.rn, c.rerr = buf, 0, nil
	c.blocked, c.checked = false, false
	err := c.rc.Read(c.wrfunc)
	if err == nil && c.blocked {
		if err = c.rc.Write(c.wfunc); err != nil {
			err = renameOp(err, "write")
		} else if c.werr == nil {
			if err = c.rc.Read(c.rfunc); err != nil {
				err = renameOp(err, "read")
			}
		}
	} else if err != nil {
		err = renameOp(err, "read")
	}
	n := c.rn
	switch {
	case c.werr != nil:
		err, n = c.werr, 0
	case err == nil:
		err = c.rerr
	}
	c.rp, c.rerr = nil, nil
	c.rmu.Unlock()
	c.wp, c.werr = nil, nil
	c.wmu.Unlock()
	return n, err
}

// idle is WriteRead's check where raw calls are not made: a peek through
// the connection's RawConn. A deadline past or a closed connection is
// reported as Read would report it; ErrNotIdle when the peek found
// anything.
func (c *Conn) idle() error {
	if c.sc == nil {
		return nil // out of reach: the write and the read will tell
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.idleOK = false
	if err := c.sc.Read(c.peekfunc); err != nil {
		return renameOp(err, "read")
	}
	if !c.idleOK {
		return ErrNotIdle
	}
	return nil
}

func (c *Conn) peek(fd uintptr) bool {
	c.idleOK = connprobe.PeekIdle(fd)
	return true // never wait for readiness
}

// writeRead is WriteRead's step: the idle check, the write (false once
// written: wait for the answer), then the read.
func (c *Conn) writeRead(fd uintptr) bool {
	if !c.checked {
		c.checked = true
		if !connprobe.PeekIdle(fd) {
			c.werr = ErrNotIdle
			return true
		}
	}
	if c.wn < len(c.wp) && c.werr == nil {
		if !c.write(fd) {
			c.blocked = true // finish it as Write does
			return true
		}
		return c.werr != nil
	}
	return c.read(fd)
}

func (c *Conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}

// renameOp names the operation of an error of syscall.RawConn (a deadline,
// a closed connection) as net.Conn's Read and Write do: "read", not
// "raw-read".
func renameOp(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}
