package agent

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// hostsFile is the hosts file the agent keeps: the machine's own
// /etc/hosts followed by one line per client alias. `trellis run` shows it
// to the application as /etc/hosts (a bind mount in a private mount
// namespace), so it is rewritten in place: a bind mount pins the file,
// and a rename would leave the application reading the old one.
type hostsFile struct {
	path string
	base []byte // the machine's hosts file, read once
}

func newHostsFile(path, basePath string) (*hostsFile, error) {
	if fi, err := os.Stat(path); err == nil {
		if bi, err := os.Stat(basePath); err == nil && os.SameFile(fi, bi) {
			return nil, fmt.Errorf("hosts file %s is the machine's %s: give the agent its own state directory", path, basePath)
		}
	}
	base, err := os.ReadFile(basePath)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("reading %s: %w", basePath, err)
	}
	if len(base) > 0 && base[len(base)-1] != '\n' {
		base = append(base, '\n')
	}
	h := &hostsFile{path: path, base: base}
	return h, h.write(nil)
}

// write replaces the alias lines with names (name → address).
func (h *hostsFile) write(names map[string]netip.Addr) error {
	var b bytes.Buffer
	b.Write(h.base)
	b.WriteString("# Trellis agent: client aliases of the namespace\n")
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	slices.Sort(keys)
	for _, n := range keys {
		fmt.Fprintf(&b, "%s\t%s\n", names[n], strings.TrimSuffix(n, "."))
	}
	// O_NOFOLLOW: a symlink planted at the path is not followed.
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_CREATE|noFollow, 0o644)
	if err != nil {
		return fmt.Errorf("hosts file: %w", err)
	}
	// Write first, then cut the tail: a reader sees either the old
	// content or a complete new head, never an empty file.
	if _, err := f.WriteAt(b.Bytes(), 0); err != nil {
		f.Close()
		return fmt.Errorf("hosts file: %w", err)
	}
	if err := f.Truncate(int64(b.Len())); err != nil {
		f.Close()
		return fmt.Errorf("hosts file: %w", err)
	}
	return f.Close()
}
