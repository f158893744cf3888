//go:build unix

package metrics

import "syscall"

// maxFDs is the soft limit on open file descriptors.
func maxFDs() (float64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return float64(rl.Cur), true
}
