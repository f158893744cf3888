//go:build unix && !(linux && !386)

package connprobe

import "syscall"

// PeekIdle peeks at socket fd, one byte without waiting: EAGAIN means an open, silent
// connection; EOF, data or any other error means it is done.
func PeekIdle(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
