package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/fieldpath"
)

// ErrCompile is wrapped by the errors of Compile: the Policy cannot be
// turned into matchers (it was built by hand rather than by Parse, or is of
// the wrong Kind).
var ErrCompile = errors.New("policy cannot be compiled")

// Problem is one thing wrong: a field path and a message
// (fieldpath.Problem, shared with the other validators).
type Problem = fieldpath.Problem

// ValidationError is returned by Parse and Canonical for a document that is
// not a valid policy. Problems lists every problem found, sorted by path
// (array indexes compare numerically); problems at the same path keep the
// order in which they were found.
type ValidationError struct {
	Problems []Problem
}

// Error joins all problems into one line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid policy: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// problems collects Problems while a document is checked.
type problems struct {
	list []Problem
}

func (ps *problems) add(at *path, msg string) {
	ps.list = append(ps.list, Problem{Path: at.String(), Message: msg})
}

func (ps *problems) addf(at *path, format string, args ...any) {
	ps.add(at, fmt.Sprintf(format, args...))
}

// err returns the collected problems as a sorted *ValidationError, or nil.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int { return fieldpath.Compare(a.Path, b.Path) })
	return &ValidationError{Problems: list}
}

// path is a location in the document, kept as a chain of links to its
// parent so that building one costs nothing until a problem is reported.
// The nil *path is the document itself.
type path struct {
	parent *path
	key    string // member name, used when index < 0
	index  int    // array index, or -1
}

// field returns the path of member k of the object at p.
func (p *path) field(k string) path { return path{parent: p, key: k, index: -1} }

// elem returns the path of element i of the array at p.
func (p *path) elem(i int) path { return path{parent: p, index: i} }

// String renders the path, for example `Statement[0].Condition.Bool`.
func (p *path) String() string {
	if p == nil {
		return ""
	}
	var segs []*path
	for q := p; q != nil; q = q.parent {
		segs = append(segs, q)
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		switch {
		case s.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		case !plainName(s.key):
			b.WriteByte('[')
			b.WriteString(strconv.Quote(s.key))
			b.WriteByte(']')
		default:
			if i != len(segs)-1 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		}
	}
	return b.String()
}

// plainName reports whether a member name can be written after a dot.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f:
			return false
		case c == '.' || c == '[' || c == ']' || c == '"' || c == '\\':
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
