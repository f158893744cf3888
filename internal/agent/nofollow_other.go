//go:build !unix

package agent

// noFollow is not available here; the state directory's permissions
// protect the hosts file.
const noFollow = 0
