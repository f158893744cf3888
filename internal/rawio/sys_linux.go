package rawio

import (
	"io"
	"syscall"
	"unsafe"
)

const supported = !instrumented

// read is one read(2) on fd; false asks the poller to wait for data.
func (c *Conn) read(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rp[0])), uintptr(len(c.rp)))
		switch errno {
		case 0:
			c.rn = int(n)
			if n == 0 {
				c.rerr = io.EOF
			}
			raceWrote(c.rp[:n])
			raceAcquire()
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = c.opError("read", errno)
			return true
		}
	}
}

// write writes what is left of c.wp to fd; false asks the poller to wait
// for room.
func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wp) {
		rest := c.wp[c.wn:]
		raceReleaseMerge()
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch errno {
		case 0:
			if n == 0 {
				// Not for a socket; net returns the same.
				c.werr = io.ErrUnexpectedEOF
				return true
			}
			raceRead(rest[:n])
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = c.opError("write", errno)
			return true
		}
	}
	return true
}
