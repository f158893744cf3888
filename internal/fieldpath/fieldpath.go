// Package fieldpath is what the validators of policy documents and agent
// documents share: a Problem at a field path (Statement[2].Effect,
// services[10].clientAliases[0].port), and the order that makes a list
// of problems read in document order.
package fieldpath

import (
	"cmp"
	"strings"
)

// Problem is one thing wrong with a document.
type Problem struct {
	// Path locates the problem, JSON-path-like; members whose names are
	// not plain identifiers are written as ["name"]. It is "" for
	// problems with the whole document.
	Path string
	// Message says what is wrong; it starts with a lower-case letter.
	Message string
}

// String returns "Path: Message", or Message when Path is empty.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Compare orders paths as strings, except that runs of digits compare by
// numeric value, so services[2] sorts before services[10]. Leading zeros
// do not count.
func Compare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return cmp.Compare(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if a[i] != b[j] {
			return cmp.Compare(a[i], b[j])
		}
		i++
		j++
	}
	return cmp.Compare(len(a)-i, len(b)-j)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
