//go:build !unix

package connprobe

// PeekIdle cannot peek here: the connection is taken as usable, and a
// request on a closed one fails as it would without the probe.
func PeekIdle(uintptr) bool { return true }
