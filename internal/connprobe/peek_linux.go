//go:build !386

package connprobe

import (
	"syscall"
	"unsafe"
)

// PeekIdle peeks at socket fd, one byte without waiting: EAGAIN means an open, silent
// connection; EOF, data or any other error means it is done. The call is
// raw (it cannot block), so that probing a pooled connection does not
// wake the runtime's monitor thread (see internal/rawio).
func PeekIdle(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}
