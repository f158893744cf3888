package agent

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// SandboxVerb is the hidden command `trellis run` re-executes itself with
// to enter the application's private mount namespace.
const SandboxVerb = "__sandbox"

// AppCommand is the command that runs argv with hostsPath as its
// /etc/hosts, without touching the machine's: self (the trellis binary)
// is started in a new mount namespace (whose mounts Go makes private) as
// `self __sandbox HOSTS -- ARGV...`, which bind-mounts HOSTS over
// /etc/hosts and then executes argv in its place. private reports whether
// that mechanism is available (it needs CAP_SYS_ADMIN, i.e. root); when
// it is not, the command runs argv directly and the names resolve only
// for programs that read the file at hostsPath.
func AppCommand(self, hostsPath string, argv []string) (cmd *exec.Cmd, private bool) {
	if os.Geteuid() != 0 {
		return exec.Command(argv[0], argv[1:]...), false
	}
	cmd = exec.Command(self, append([]string{SandboxVerb, hostsPath, "--"}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd, true
}

// ExecSandboxed is the body of the hidden sandbox verb: inside the new
// mount namespace, show hostsPath as /etc/hosts and become argv. It
// returns only on failure.
func ExecSandboxed(hostsPath string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("sandbox: no command")
	}
	// Never bind-mount over the machine's /etc/hosts: refuse unless this
	// process is in another mount namespace than its parent ('trellis
	// run', which started it with a new one).
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err1 != nil || err2 != nil || self == parent {
		return fmt.Errorf("sandbox: not in a private mount namespace (this verb is run by 'trellis run', not by hand)")
	}
	if err := syscall.Mount(hostsPath, "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("sandbox: bind-mounting %s over /etc/hosts: %w", hostsPath, err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return syscall.Exec(path, argv, os.Environ())
}
