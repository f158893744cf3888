//go:build !linux

package rawio

// Elsewhere Conn's Read and Write are the TCP connection's own.
const supported = false

func (c *Conn) read(uintptr) bool  { panic("rawio: unsupported") }
func (c *Conn) write(uintptr) bool { panic("rawio: unsupported") }
