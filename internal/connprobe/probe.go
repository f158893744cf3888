// Package connprobe tells whether an idle pooled connection can still
// carry a request, without blocking and without consuming a byte.
//
// A pool of keep-alive HTTP/1.1 connections has no reader on an idle
// connection, so a peer that closed it is noticed only when it is used
// again. Setting a read deadline in the past and reading does not tell:
// Go's poller reports the deadline before it reads. Usable peeks at the
// socket instead (recv with MSG_PEEK|MSG_DONTWAIT), through a Prober made
// once per connection so that a probe allocates nothing.
package connprobe

import (
	"crypto/tls"
	"net"
	"syscall"
)

// Unwrapper is a connection wrapper that can name the connection it
// wraps, for New to reach the socket.
type Unwrapper interface {
	Unwrap() net.Conn
}

// Prober probes one connection. Made once per connection (New), it
// probes without allocating.
type Prober struct {
	rc     syscall.RawConn // nil: the socket is out of reach
	peek   func(fd uintptr) bool
	usable bool
}

// New returns the Prober of c. It looks through *tls.Conn and Unwrapper
// wrappers to the socket; a connection whose socket it cannot reach is
// always taken as usable.
func New(c net.Conn) *Prober {
	p := &Prober{}
	if sc := socketOf(c); sc != nil {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.peek = p.peekFD
	return p
}

func (p *Prober) peekFD(fd uintptr) bool {
	p.usable = PeekIdle(fd)
	return true // never wait for readiness
}

// Usable reports whether the idle connection may carry a request: its
// peer has not closed or reset it and has sent nothing nobody asked for
// (on an idle HTTP/1.1 connection, any byte means the connection is done).
// It must not run concurrently with a read of the connection.
func (p *Prober) Usable() bool {
	if p.rc == nil {
		return true
	}
	p.usable = false
	err := p.rc.Read(p.peek)
	return err == nil && p.usable
}

// socketOf unwraps c down to a connection with a file descriptor.
func socketOf(c net.Conn) syscall.Conn {
	for range 8 {
		switch x := c.(type) {
		case *net.TCPConn:
			return x
		case *net.UnixConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		case Unwrapper:
			c = x.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
