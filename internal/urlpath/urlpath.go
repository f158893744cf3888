// Package urlpath normalises request paths the one way Trellis matches,
// authorises and forwards them: the gateway's rules and auth policies and
// `trellis policy explain` all see the path the target receives.
package urlpath

import (
	"errors"
	"slices"
	"strings"
)

// ErrInvalidEscape: a '%' not followed by two hex digits.
var ErrInvalidEscape = errors.New("invalid percent-encoding in path")

// Normalize returns the path a target receives for the raw, still
// percent-encoded request path p (the query already cut off). Rules match
// against the same string, so what a rule sees is exactly what the target
// gets. The steps, in order:
//
//  1. Percent-encodings of unreserved characters (ALPHA, DIGIT, "-", ".",
//     "_", "~"; RFC 3986 §2.3) are decoded; every other percent-encoding is
//     kept with its hex digits upper-cased ("%2f" → "%2F"). An encoded
//     slash therefore stays "%2F" and never separates segments, and "%25"
//     stays "%25" (no double decoding). A '%' not followed by two hex
//     digits is an error (the request is answered 400).
//  2. The path is split into segments on literal '/' only. Empty segments
//     ("//") are dropped, "." segments are dropped, and ".." drops the
//     previous segment (never above the root). Dot segments are recognised
//     after step 1, so "%2E%2E" is "..". ";" parameters ("..;") and '\'
//     are ordinary characters.
//  3. A trailing slash is kept, and a path ending in a dot segment ends in
//     '/' ("/a/." → "/a/", "/a/b/.." → "/a/"). The empty path is "/".
//
// A path that does not start with '/' (the asterisk form "*") is returned
// unchanged. An already-normal path is returned as is, without allocating.
func Normalize(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return p, nil
	}
	if IsNormal(p) {
		return p, nil
	}
	out := make([]byte, 0, len(p))
	n := len(p)
	i := 0
	for i < n {
		// p[i] == '/': skip the run of slashes.
		for i < n && p[i] == '/' {
			i++
		}
		seg := len(out)
		out = append(out, '/')
		if i == n {
			break // trailing slash (or the root)
		}
		for i < n && p[i] != '/' {
			c := p[i]
			if c != '%' {
				out = append(out, c)
				i++
				continue
			}
			if i+2 >= n || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", ErrInvalidEscape
			}
			if v := unhex(p[i+1])<<4 | unhex(p[i+2]); isUnreserved(v) {
				out = append(out, v)
			} else {
				out = append(out, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 3
		}
		s := out[seg+1:]
		switch {
		case len(s) == 1 && s[0] == '.':
			out = out[:seg]
		case len(s) == 2 && s[0] == '.' && s[1] == '.':
			out = out[:seg]
			for len(out) > 0 && out[len(out)-1] != '/' {
				out = out[:len(out)-1]
			}
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			continue
		}
		if i == n {
			out = append(out, '/')
		}
	}
	if len(out) == 0 {
		return "/", nil
	}
	return string(out), nil
}

// IsNormal reports whether Normalize would return p unchanged: no
// empty or dot segments, no decodable or lower-case percent-encodings.
func IsNormal(p string) bool {
	n := len(p)
	for i := 0; i < n; i++ {
		switch p[i] {
		case '%':
			if i+2 >= n || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			if isUnreserved(unhex(p[i+1])<<4|unhex(p[i+2])) || isLowerHex(p[i+1]) || isLowerHex(p[i+2]) {
				return false
			}
			i += 2
		case '/':
			r := p[i+1:]
			if len(r) > 0 && r[0] == '/' {
				return false
			}
			if len(r) > 0 && r[0] == '.' && (len(r) == 1 || r[1] == '/') {
				return false
			}
			if len(r) > 1 && r[0] == '.' && r[1] == '.' && (len(r) == 2 || r[2] == '/') {
				return false
			}
		}
	}
	return true
}

// NormalizePattern applies step 1 of Normalize to a rule's path
// pattern, so that "/%7euser" in a rule matches the request "/~user". Dot
// and empty segments of a pattern are left alone: a pattern is a literal
// written by an operator, and a prefix such as "/api/" must keep its
// trailing slash. An invalid escape is left as written (it can never
// match, since request paths with one are rejected).
func NormalizePattern(p string) string {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			if v := unhex(p[i+1])<<4 | unhex(p[i+2]); isUnreserved(v) {
				out = append(out, v)
			} else {
				out = append(out, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 2
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func upperHex(c byte) byte {
	if isLowerHex(c) {
		return c - ('a' - 'A')
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// SlashDecoded is the path a target that decodes "%2F" before routing
// sees, or one that takes a backslash (raw or "%5C") for a separator: p,
// a Normalize result, with those turned into '/' and normalised again, so
// "/public%2F..%2Fadmin" and "/public\..\admin" give "/admin". ok is
// false when p holds none of them (the result is then p). Auth decisions
// hold for both forms, so no such spelling can carry a request past a
// policy on the decoded path.
func SlashDecoded(p string) (decoded string, ok bool) {
	if !strings.Contains(p, "%2F") && !strings.Contains(p, "%5C") && !strings.Contains(p, "\\") {
		return p, false
	}
	r := strings.NewReplacer("%2F", "/", "%5C", "/", "\\", "/").Replace(p)
	d, err := Normalize(r)
	if err != nil {
		// Normalize accepted p, and replacing escapes adds none.
		return r, true
	}
	return d, true
}

// Readings are the other ways a target may read p, a Normalize result,
// for auth decisions, which must hold for every one of them:
// SlashDecoded's, and the path with ";" parameters cut from each segment
// ("/public/..;/admin" is "/admin" to servers such as Tomcat that drop
// path parameters before resolving dot segments), and both. Readings
// equal to p or to one another are left out; nil when there are none.
func Readings(p string) []string {
	var out []string
	add := func(s string) {
		if s != p && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	dec, decOK := SlashDecoded(p)
	if decOK {
		add(dec)
	}
	if strings.IndexByte(p, ';') >= 0 {
		add(paramsCut(p))
		if decOK {
			add(paramsCut(dec))
		}
	}
	return out
}

// paramsCut removes the ";..." of every segment of p and normalises the
// result.
func paramsCut(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	r, err := Normalize(strings.Join(segs, "/"))
	if err != nil {
		return p
	}
	return r
}
