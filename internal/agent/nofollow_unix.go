//go:build unix

package agent

import "syscall"

// noFollow makes opening the hosts file refuse a symlink.
const noFollow = syscall.O_NOFOLLOW
