// Package connprobe tells whether an idle pooled connection can still
// carry a request, without blocking and without consuming a byte.
//
// A pool of keep-alive HTTP/1.1 connections has no reader on an idle
// connection, so a peer that closed it is noticed only when it is used
// again. Setting a read deadline in the past and reading does not tell:
// Go's poller reports the deadline before it reads. Usable peeks at the
// socket instead (recv with MSG_PEEK|MSG_DONTWAIT).
package connprobe

import (
	"crypto/tls"
	"net"
	"syscall"
)

// Unwrapper is a connection wrapper that can name the connection it
// wraps, for Usable to reach the socket.
type Unwrapper interface {
	Unwrap() net.Conn
}

// Usable reports whether an idle connection may carry a request: its peer
// has not closed or reset it and has sent nothing nobody asked for (on an
// idle HTTP/1.1 connection, any byte means the connection is done). It
// looks through *tls.Conn and Unwrapper wrappers to the socket; a
// connection whose socket it cannot reach is taken as usable.
func Usable(c net.Conn) bool {
	sc := socketOf(c)
	if sc == nil {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	usable := false
	err = rc.Read(func(fd uintptr) bool {
		usable = peekIdle(fd)
		return true // never wait for readiness
	})
	return err == nil && usable
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
