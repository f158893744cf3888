package proxy

import (
	"net/http"
	"strings"

	"github.com/trellis-mesh/trellis/internal/h1wire"
)

// A rule's httpMatch compiled into matchers (reference §3): the method is
// compared exactly and case-sensitively; the path exactly or by plain string
// prefix (not by segment: the prefix "/api" matches "/apiv2"), ASCII
// case-insensitively unless caseSensitive is true; each header match looks
// up its header by name (names are case-insensitive) and matches when any
// one of the header's field lines matches (exact, prefix or contains),
// ASCII case-insensitively unless caseSensitive is true. Everything present
// is ANDed. Matching allocates nothing: patterns are lower-cased at compile
// time and compared with an ASCII fold.

type matchKind uint8

const (
	matchNone matchKind = iota
	matchExact
	matchPrefix
	matchContains
)

// stringMatcher matches one string against a compiled pattern.
type stringMatcher struct {
	kind matchKind
	// value is the pattern, lower-cased when fold is set.
	value string
	fold  bool
}

func (m *stringMatcher) match(s string) bool {
	switch m.kind {
	case matchExact:
		if m.fold {
			return equalFoldLower(s, m.value)
		}
		return s == m.value
	case matchPrefix:
		if len(s) < len(m.value) {
			return false
		}
		if m.fold {
			return equalFoldLower(s[:len(m.value)], m.value)
		}
		return s[:len(m.value)] == m.value
	case matchContains:
		if m.fold {
			return containsFoldLower(s, m.value)
		}
		return strings.Contains(s, m.value)
	}
	return true
}

// headerMatcher matches one request header.
type headerMatcher struct {
	// name is the canonical header key; host says the match is on the
	// Host header, which net/http moves out of Header into Request.Host.
	name string
	host bool
	stringMatcher
}

func (m *headerMatcher) match(host string, h headerReader) bool {
	if m.host {
		return m.stringMatcher.match(host)
	}
	if h == nil {
		return false
	}
	for at := 0; ; {
		v, next := h.Next(m.name, at)
		if next < 0 {
			return false
		}
		if m.stringMatcher.match(v) {
			return true
		}
		at = next
	}
}

// request is what routing reads: the request's method, normalised path
// (set by route), Host, headers and protocol major version.
type request struct {
	// r is the net/http request; nil on the HTTP/1 fast path, which
	// hands authenticated services to net/http.
	r      *http.Request
	method string
	path   string
	host   string
	header headerReader
	proto  int // 1 for HTTP/1.x, 2 for HTTP/2
}

// matches reports whether every present part of the rule's match holds.
func (r *rule) matches(q *request) bool {
	if r.method != "" && q.method != r.method {
		return false
	}
	if r.path.kind != matchNone && !r.path.match(q.path) {
		return false
	}
	for i := range r.headers {
		if !r.headers[i].match(q.host, q.header) {
			return false
		}
	}
	return true
}

// equalFoldLower compares s with the lower-case pattern p, folding ASCII
// letters of s.
func equalFoldLower(s, p string) bool {
	if len(s) != len(p) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if h1wire.LowerASCII(s[i]) != p[i] {
			return false
		}
	}
	return true
}

// containsFoldLower reports whether the lower-case pattern p occurs in s,
// folding ASCII letters of s.
func containsFoldLower(s, p string) bool {
	if len(p) == 0 {
		return true
	}
	for i := 0; i+len(p) <= len(s); i++ {
		if h1wire.LowerASCII(s[i]) == p[0] && equalFoldLower(s[i:i+len(p)], p) {
			return true
		}
	}
	return false
}

// lowerString lower-cases ASCII letters (compile time only).
func lowerString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = h1wire.LowerASCII(c)
	}
	return string(b)
}
