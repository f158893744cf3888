//go:build !linux

package agent

import (
	"errors"
	"os/exec"
)

// SandboxVerb is the hidden command `trellis run` re-executes itself with.
const SandboxVerb = "__sandbox"

// AppCommand runs argv directly: private mount namespaces are Linux-only,
// so the names resolve only for programs that read the file at hostsPath.
func AppCommand(_, _ string, argv []string) (*exec.Cmd, bool) {
	return exec.Command(argv[0], argv[1:]...), false
}

// ExecSandboxed is not available outside Linux.
func ExecSandboxed(string, []string) error {
	return errors.New("sandbox: private /etc/hosts needs Linux mount namespaces")
}
