package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/fieldpath"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError: the
// document, or a hand-built Config, is not a valid agent configuration.
var ErrInvalid = errors.New("invalid agent configuration")

// Problem is one thing wrong: a field path and a message
// (fieldpath.Problem, shared with the other validators).
type Problem = fieldpath.Problem

// ValidationError lists every problem found, sorted by path (array
// indexes compare numerically); problems at the same path keep the order
// in which they were found.
type ValidationError struct {
	Problems []Problem
}

// Error returns the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// problems collects Problems while a document is decoded and resolved.
//
// A path holding a value of the wrong JSON type is remembered: the field
// is left unset, and the resolver would otherwise report it, or what is
// under it, a second time as missing.
type problems struct {
	list []Problem
	bad  map[string]bool
}

// typef records a wrong-type problem at path and marks the path.
func (ps *problems) typef(path, format string, args ...any) {
	if ps.bad == nil {
		ps.bad = make(map[string]bool)
	}
	ps.bad[path] = true
	ps.list = append(ps.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// addf records a problem at path unless path or one of its ancestors
// held a value of the wrong type.
func (ps *problems) addf(path, format string, args ...any) {
	if ps.under(path) {
		return
	}
	ps.list = append(ps.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// under reports whether path is a marked path or lies below one.
func (ps *problems) under(path string) bool {
	if len(ps.bad) == 0 {
		return false
	}
	for {
		if ps.bad[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return false
		}
		path = path[:i]
	}
}

// empty reports whether nothing has been recorded.
func (ps *problems) empty() bool { return len(ps.list) == 0 }

// err returns the problems as a sorted *ValidationError, or nil.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int { return fieldpath.Compare(a.Path, b.Path) })
	return &ValidationError{Problems: list}
}

// field returns the path of member name of the object at p.
func field(p, name string) string {
	if !plainName(name) {
		return p + "[" + strconv.Quote(name) + "]"
	}
	if p == "" {
		return name
	}
	return p + "." + name
}

// index returns the path of element i of the array at p.
func index(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

// plainName reports whether a member name can be written after a dot.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f:
			return false
		case c == '.' || c == '[' || c == ']' || c == '"' || c == '\\':
			return false
		}
	}
	return true
}
